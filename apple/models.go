package apple

import "encoding/json"

// The models follow Apple's documentation field for field, with Apple's JSON names. Raw keeps
// each decoded payload exactly as signed, so fields Apple adds later (and nested objects
// modelled only as json.RawMessage) are never lost. Fields are zero when absent, except bools,
// where false and absent differ.

// Notification is a decoded App Store Server Notification V2 payload
// (responseBodyV2DecodedPayload). Exactly one of Data, Summary, ExternalPurchaseToken and
// AppData is normally present.
type Notification struct {
	NotificationType      NotificationType       `json:"notificationType,omitempty"`
	Subtype               Subtype                `json:"subtype,omitempty"`
	NotificationUUID      string                 `json:"notificationUUID,omitempty"`
	Version               string                 `json:"version,omitempty"`
	SignedDate            Timestamp              `json:"signedDate,omitempty"`
	Data                  *Data                  `json:"data,omitempty"`
	Summary               *Summary               `json:"summary,omitempty"`
	ExternalPurchaseToken *ExternalPurchaseToken `json:"externalPurchaseToken,omitempty"`
	AppData               *AppData               `json:"appData,omitempty"`

	// Raw is the payload JSON exactly as signed.
	Raw json.RawMessage `json:"-"`

	// Decoded nested signed data: Data.SignedTransactionInfo, Data.SignedRenewalInfo and
	// AppData.SignedAppTransactionInfo. Nil when the field is absent. They were verified
	// exactly when the Notification was.
	Transaction    *Transaction    `json:"-"`
	RenewalInfo    *RenewalInfo    `json:"-"`
	AppTransaction *AppTransaction `json:"-"`
}

// Data holds the app metadata and the signed transaction and renewal information of a
// notification (data).
type Data struct {
	AppAppleID               int64                    `json:"appAppleId,omitempty"`
	BundleID                 string                   `json:"bundleId,omitempty"`
	BundleVersion            string                   `json:"bundleVersion,omitempty"`
	Environment              Environment              `json:"environment,omitempty"`
	SignedTransactionInfo    string                   `json:"signedTransactionInfo,omitempty"`
	SignedRenewalInfo        string                   `json:"signedRenewalInfo,omitempty"`
	Status                   SubscriptionStatus       `json:"status,omitempty"`
	ConsumptionRequestReason ConsumptionRequestReason `json:"consumptionRequestReason,omitempty"`
}

// Summary reports a completed subscription-renewal-date extension request (summary).
type Summary struct {
	RequestIdentifier      string      `json:"requestIdentifier,omitempty"`
	Environment            Environment `json:"environment,omitempty"`
	AppAppleID             int64       `json:"appAppleId,omitempty"`
	BundleID               string      `json:"bundleId,omitempty"`
	ProductID              string      `json:"productId,omitempty"`
	StorefrontCountryCodes []string    `json:"storefrontCountryCodes,omitempty"`
	FailedCount            int64       `json:"failedCount,omitempty"`
	SucceededCount         int64       `json:"succeededCount,omitempty"`
}

// ExternalPurchaseToken is the payload of an EXTERNAL_PURCHASE_TOKEN notification
// (externalPurchaseToken). It has no environment field: a token whose externalPurchaseId
// starts with "SANDBOX" is a Sandbox token.
type ExternalPurchaseToken struct {
	ExternalPurchaseID  string    `json:"externalPurchaseId,omitempty"`
	TokenCreationDate   Timestamp `json:"tokenCreationDate,omitempty"`
	AppAppleID          int64     `json:"appAppleId,omitempty"`
	BundleID            string    `json:"bundleId,omitempty"`
	TokenType           TokenType `json:"tokenType,omitempty"`
	TokenExpirationDate Timestamp `json:"tokenExpirationDate,omitempty"`
}

// AppData holds the app metadata and signed app transaction of a notification (appData).
type AppData struct {
	AppAppleID               int64       `json:"appAppleId,omitempty"`
	BundleID                 string      `json:"bundleId,omitempty"`
	Environment              Environment `json:"environment,omitempty"`
	SignedAppTransactionInfo string      `json:"signedAppTransactionInfo,omitempty"`
}

// Transaction is decoded transaction information (JWSTransactionDecodedPayload). Prices are in
// milliunits of Currency; Apple says not to use them for revenue accounting.
type Transaction struct {
	OriginalTransactionID       string                     `json:"originalTransactionId,omitempty"`
	TransactionID               string                     `json:"transactionId,omitempty"`
	WebOrderLineItemID          string                     `json:"webOrderLineItemId,omitempty"`
	BundleID                    string                     `json:"bundleId,omitempty"`
	ProductID                   string                     `json:"productId,omitempty"`
	SubscriptionGroupIdentifier string                     `json:"subscriptionGroupIdentifier,omitempty"`
	PurchaseDate                Timestamp                  `json:"purchaseDate,omitempty"`
	OriginalPurchaseDate        Timestamp                  `json:"originalPurchaseDate,omitempty"`
	ExpiresDate                 Timestamp                  `json:"expiresDate,omitempty"`
	Quantity                    int32                      `json:"quantity,omitempty"`
	Type                        ProductType                `json:"type,omitempty"`
	AppAccountToken             string                     `json:"appAccountToken,omitempty"`
	InAppOwnershipType          InAppOwnershipType         `json:"inAppOwnershipType,omitempty"`
	SignedDate                  Timestamp                  `json:"signedDate,omitempty"`
	RevocationReason            *RevocationReason          `json:"revocationReason,omitempty"` // nil when not revoked; 0 is a reason
	RevocationDate              Timestamp                  `json:"revocationDate,omitempty"`
	RevocationType              RevocationType             `json:"revocationType,omitempty"`
	RevocationPercentage        int64                      `json:"revocationPercentage,omitempty"` // milliunits: 100000 is 100 %
	IsUpgraded                  *bool                      `json:"isUpgraded,omitempty"`
	OfferType                   OfferType                  `json:"offerType,omitempty"`
	OfferIdentifier             string                     `json:"offerIdentifier,omitempty"`
	OfferDiscountType           OfferDiscountType          `json:"offerDiscountType,omitempty"`
	OfferPeriod                 string                     `json:"offerPeriod,omitempty"` // ISO 8601 duration
	Environment                 Environment                `json:"environment,omitempty"`
	Storefront                  string                     `json:"storefront,omitempty"`
	StorefrontID                string                     `json:"storefrontId,omitempty"`
	TransactionReason           TransactionReason          `json:"transactionReason,omitempty"`
	Currency                    string                     `json:"currency,omitempty"`
	Price                       int64                      `json:"price,omitempty"` // milliunits of Currency
	AppTransactionID            string                     `json:"appTransactionId,omitempty"`
	BillingPlanType             BillingPlanType            `json:"billingPlanType,omitempty"`
	CommitmentInfo              *TransactionCommitmentInfo `json:"commitmentInfo,omitempty"`
	AdvancedCommerceInfo        json.RawMessage            `json:"advancedCommerceInfo,omitempty"` // Advanced Commerce API SKUs only

	// Raw is the payload JSON exactly as signed.
	Raw json.RawMessage `json:"-"`
}

// TransactionCommitmentInfo describes a subscription with a billing commitment (commitmentInfo
// of a transaction).
type TransactionCommitmentInfo struct {
	BillingPeriodNumber   int32     `json:"billingPeriodNumber,omitempty"`
	TotalBillingPeriods   int32     `json:"totalBillingPeriods,omitempty"`
	CommitmentExpiresDate Timestamp `json:"commitmentExpiresDate,omitempty"`
	CommitmentPrice       int64     `json:"commitmentPrice,omitempty"` // milliunits
}

// RenewalInfo is decoded subscription renewal information (JWSRenewalInfoDecodedPayload).
type RenewalInfo struct {
	OriginalTransactionID       string                 `json:"originalTransactionId,omitempty"`
	AutoRenewProductID          string                 `json:"autoRenewProductId,omitempty"`
	ProductID                   string                 `json:"productId,omitempty"`
	AutoRenewStatus             *AutoRenewStatus       `json:"autoRenewStatus,omitempty"` // nil when absent; 0 is off
	ExpirationIntent            ExpirationIntent       `json:"expirationIntent,omitempty"`
	GracePeriodExpiresDate      Timestamp              `json:"gracePeriodExpiresDate,omitempty"`
	IsInBillingRetryPeriod      *bool                  `json:"isInBillingRetryPeriod,omitempty"`
	OfferIdentifier             string                 `json:"offerIdentifier,omitempty"`
	OfferType                   OfferType              `json:"offerType,omitempty"`
	OfferDiscountType           OfferDiscountType      `json:"offerDiscountType,omitempty"`
	OfferPeriod                 string                 `json:"offerPeriod,omitempty"`         // ISO 8601 duration
	PriceIncreaseStatus         *PriceIncreaseStatus   `json:"priceIncreaseStatus,omitempty"` // nil when absent; 0 is not responded
	Environment                 Environment            `json:"environment,omitempty"`
	SignedDate                  Timestamp              `json:"signedDate,omitempty"`
	RecentSubscriptionStartDate Timestamp              `json:"recentSubscriptionStartDate,omitempty"`
	RenewalDate                 Timestamp              `json:"renewalDate,omitempty"`
	RenewalPrice                int64                  `json:"renewalPrice,omitempty"` // milliunits of Currency
	Currency                    string                 `json:"currency,omitempty"`
	EligibleWinBackOfferIDs     []string               `json:"eligibleWinBackOfferIds,omitempty"`
	AppAccountToken             string                 `json:"appAccountToken,omitempty"`
	AppTransactionID            string                 `json:"appTransactionId,omitempty"`
	RenewalBillingPlanType      BillingPlanType        `json:"renewalBillingPlanType,omitempty"`
	CommitmentInfo              *RenewalCommitmentInfo `json:"commitmentInfo,omitempty"`
	AdvancedCommerceInfo        json.RawMessage        `json:"advancedCommerceInfo,omitempty"` // Advanced Commerce API SKUs only

	// Raw is the payload JSON exactly as signed.
	Raw json.RawMessage `json:"-"`
}

// RenewalCommitmentInfo describes the renewal of a subscription with a billing commitment
// (commitmentInfo of renewal info).
type RenewalCommitmentInfo struct {
	CommitmentAutoRenewProductID     string           `json:"commitmentAutoRenewProductId,omitempty"`
	CommitmentAutoRenewStatus        *AutoRenewStatus `json:"commitmentAutoRenewStatus,omitempty"`
	CommitmentRenewalBillingPlanType BillingPlanType  `json:"commitmentRenewalBillingPlanType,omitempty"`
	CommitmentRenewalDate            Timestamp        `json:"commitmentRenewalDate,omitempty"`
	CommitmentRenewalPrice           int64            `json:"commitmentRenewalPrice,omitempty"` // milliunits
}

// AppTransaction is a decoded app transaction, the customer's purchase of the app itself
// (JWSAppTransactionDecodedPayload).
type AppTransaction struct {
	ReceiptType                Environment      `json:"receiptType,omitempty"`
	AppAppleID                 int64            `json:"appAppleId,omitempty"`
	BundleID                   string           `json:"bundleId,omitempty"`
	ApplicationVersion         string           `json:"applicationVersion,omitempty"`
	VersionExternalIdentifier  int64            `json:"versionExternalIdentifier,omitempty"`
	ReceiptCreationDate        Timestamp        `json:"receiptCreationDate,omitempty"`
	OriginalPurchaseDate       Timestamp        `json:"originalPurchaseDate,omitempty"`
	OriginalApplicationVersion string           `json:"originalApplicationVersion,omitempty"`
	DeviceVerification         string           `json:"deviceVerification,omitempty"`
	DeviceVerificationNonce    string           `json:"deviceVerificationNonce,omitempty"`
	PreorderDate               Timestamp        `json:"preorderDate,omitempty"`
	AppTransactionID           string           `json:"appTransactionId,omitempty"`
	OriginalPlatform           PurchasePlatform `json:"originalPlatform,omitempty"`

	// Raw is the payload JSON exactly as signed.
	Raw json.RawMessage `json:"-"`
}
