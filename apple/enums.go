package apple

// The enumerations below list the values Apple documents today. Apple adds values over time;
// a value not listed here decodes as is and is passed through, never rejected. Where Apple
// sends a number on the wire the type is an integer type.

// NotificationType is the event a version 2 notification reports (notificationType).
type NotificationType string

// Notification types.
const (
	NotificationTypeConsumptionRequest     NotificationType = "CONSUMPTION_REQUEST"
	NotificationTypeDidChangeRenewalPref   NotificationType = "DID_CHANGE_RENEWAL_PREF"
	NotificationTypeDidChangeRenewalStatus NotificationType = "DID_CHANGE_RENEWAL_STATUS"
	NotificationTypeDidFailToRenew         NotificationType = "DID_FAIL_TO_RENEW"
	NotificationTypeDidRenew               NotificationType = "DID_RENEW"
	NotificationTypeExpired                NotificationType = "EXPIRED"
	NotificationTypeExternalPurchaseToken  NotificationType = "EXTERNAL_PURCHASE_TOKEN"
	NotificationTypeGracePeriodExpired     NotificationType = "GRACE_PERIOD_EXPIRED"
	NotificationTypeMetadataUpdate         NotificationType = "METADATA_UPDATE" // Advanced Commerce API
	NotificationTypeMigration              NotificationType = "MIGRATION"       // Advanced Commerce API
	NotificationTypeOfferRedeemed          NotificationType = "OFFER_REDEEMED"
	NotificationTypeOneTimeCharge          NotificationType = "ONE_TIME_CHARGE"
	NotificationTypePriceChange            NotificationType = "PRICE_CHANGE" // Advanced Commerce API
	NotificationTypePriceIncrease          NotificationType = "PRICE_INCREASE"
	NotificationTypeRefund                 NotificationType = "REFUND"
	NotificationTypeRefundDeclined         NotificationType = "REFUND_DECLINED"
	NotificationTypeRefundReversed         NotificationType = "REFUND_REVERSED"
	NotificationTypeRenewalExtended        NotificationType = "RENEWAL_EXTENDED"
	NotificationTypeRenewalExtension       NotificationType = "RENEWAL_EXTENSION"
	NotificationTypeRescindConsent         NotificationType = "RESCIND_CONSENT"
	NotificationTypeRevoke                 NotificationType = "REVOKE"
	NotificationTypeSubscribed             NotificationType = "SUBSCRIBED"
	NotificationTypeTest                   NotificationType = "TEST"
)

// Subtype details some notification types (subtype).
type Subtype string

// Notification subtypes.
const (
	SubtypeAccepted            Subtype = "ACCEPTED"
	SubtypeActiveTokenReminder Subtype = "ACTIVE_TOKEN_REMINDER"
	SubtypeAutoRenewDisabled   Subtype = "AUTO_RENEW_DISABLED"
	SubtypeAutoRenewEnabled    Subtype = "AUTO_RENEW_ENABLED"
	SubtypeBillingRecovery     Subtype = "BILLING_RECOVERY"
	SubtypeBillingRetry        Subtype = "BILLING_RETRY"
	SubtypeCreated             Subtype = "CREATED"
	SubtypeDowngrade           Subtype = "DOWNGRADE"
	SubtypeFailure             Subtype = "FAILURE"
	SubtypeGracePeriod         Subtype = "GRACE_PERIOD"
	SubtypeInitialBuy          Subtype = "INITIAL_BUY"
	SubtypePending             Subtype = "PENDING"
	SubtypePriceIncrease       Subtype = "PRICE_INCREASE"
	SubtypeProductNotForSale   Subtype = "PRODUCT_NOT_FOR_SALE"
	SubtypeResubscribe         Subtype = "RESUBSCRIBE"
	SubtypeSummary             Subtype = "SUMMARY"
	SubtypeUnreported          Subtype = "UNREPORTED"
	SubtypeUpgrade             Subtype = "UPGRADE"
	SubtypeVoluntary           Subtype = "VOLUNTARY"
)

// Environment is the server environment (environment, receiptType).
type Environment string

// Environments. Xcode and LocalTesting data is not signed by Apple; see IsUnsignedEnvironment.
const (
	EnvironmentProduction   Environment = "Production"
	EnvironmentSandbox      Environment = "Sandbox"
	EnvironmentXcode        Environment = "Xcode"
	EnvironmentLocalTesting Environment = "LocalTesting"
)

// SubscriptionStatus is the status of an auto-renewable subscription (data.status).
type SubscriptionStatus int32

// Subscription statuses.
const (
	SubscriptionStatusActive             SubscriptionStatus = 1
	SubscriptionStatusExpired            SubscriptionStatus = 2
	SubscriptionStatusBillingRetry       SubscriptionStatus = 3
	SubscriptionStatusBillingGracePeriod SubscriptionStatus = 4
	SubscriptionStatusRevoked            SubscriptionStatus = 5
)

// ConsumptionRequestReason is why the customer asked for a refund (data.consumptionRequestReason).
type ConsumptionRequestReason string

// Consumption request reasons.
const (
	ConsumptionRequestReasonUnintendedPurchase      ConsumptionRequestReason = "UNINTENDED_PURCHASE"
	ConsumptionRequestReasonFulfillmentIssue        ConsumptionRequestReason = "FULFILLMENT_ISSUE"
	ConsumptionRequestReasonUnsatisfiedWithPurchase ConsumptionRequestReason = "UNSATISFIED_WITH_PURCHASE"
	ConsumptionRequestReasonLegal                   ConsumptionRequestReason = "LEGAL"
	ConsumptionRequestReasonOther                   ConsumptionRequestReason = "OTHER"
)

// ProductType is the type of an in-app purchase (type).
type ProductType string

// Product types.
const (
	ProductTypeAutoRenewable ProductType = "Auto-Renewable Subscription"
	ProductTypeNonConsumable ProductType = "Non-Consumable"
	ProductTypeConsumable    ProductType = "Consumable"
	ProductTypeNonRenewing   ProductType = "Non-Renewing Subscription"
)

// InAppOwnershipType says whether the customer bought the item or has it through Family
// Sharing (inAppOwnershipType).
type InAppOwnershipType string

// Ownership types.
const (
	InAppOwnershipTypeFamilyShared InAppOwnershipType = "FAMILY_SHARED"
	InAppOwnershipTypePurchased    InAppOwnershipType = "PURCHASED"
)

// TransactionReason says whether a transaction is a purchase or a system-initiated renewal
// (transactionReason).
type TransactionReason string

// Transaction reasons.
const (
	TransactionReasonPurchase TransactionReason = "PURCHASE"
	TransactionReasonRenewal  TransactionReason = "RENEWAL"
)

// OfferType is the type of a subscription offer (offerType).
type OfferType int32

// Offer types.
const (
	OfferTypeIntroductory OfferType = 1
	OfferTypePromotional  OfferType = 2
	OfferTypeOfferCode    OfferType = 3
	OfferTypeWinBack      OfferType = 4
)

// OfferDiscountType is the payment mode of an offer (offerDiscountType).
type OfferDiscountType string

// Offer discount types.
const (
	OfferDiscountTypeFreeTrial  OfferDiscountType = "FREE_TRIAL"
	OfferDiscountTypePayAsYouGo OfferDiscountType = "PAY_AS_YOU_GO"
	OfferDiscountTypePayUpFront OfferDiscountType = "PAY_UP_FRONT"
	OfferDiscountTypeOneTime    OfferDiscountType = "ONE_TIME"
)

// RevocationReason is why the App Store refunded or revoked a transaction (revocationReason).
type RevocationReason int32

// Revocation reasons.
const (
	RevocationReasonOther RevocationReason = 0 // e.g. an accidental purchase
	RevocationReasonIssue RevocationReason = 1 // an actual or perceived issue within the app
)

// RevocationType is the kind of refund or revocation (revocationType).
type RevocationType string

// Revocation types.
const (
	RevocationTypeRefundFull     RevocationType = "REFUND_FULL"
	RevocationTypeRefundProrated RevocationType = "REFUND_PRORATED" // see revocationPercentage
	RevocationTypeFamilyRevoke   RevocationType = "FAMILY_REVOKE"
)

// BillingPlanType is how a subscription is billed (billingPlanType, renewalBillingPlanType).
type BillingPlanType string

// Billing plan types.
const (
	BillingPlanTypeBilledUpfront BillingPlanType = "BILLED_UPFRONT"
	BillingPlanTypeMonthly       BillingPlanType = "MONTHLY"
)

// AutoRenewStatus says whether a subscription renews automatically (autoRenewStatus).
type AutoRenewStatus int32

// Auto-renew statuses.
const (
	AutoRenewStatusOff AutoRenewStatus = 0
	AutoRenewStatusOn  AutoRenewStatus = 1
)

// ExpirationIntent is why a subscription expired (expirationIntent).
type ExpirationIntent int32

// Expiration intents.
const (
	ExpirationIntentCustomerCancelled       ExpirationIntent = 1
	ExpirationIntentBillingError            ExpirationIntent = 2
	ExpirationIntentPriceIncreaseNotConsent ExpirationIntent = 3
	ExpirationIntentProductNotAvailable     ExpirationIntent = 4
	ExpirationIntentOther                   ExpirationIntent = 5
)

// PriceIncreaseStatus is the customer's answer to a price increase (priceIncreaseStatus).
type PriceIncreaseStatus int32

// Price increase statuses.
const (
	PriceIncreaseStatusNotResponded PriceIncreaseStatus = 0
	PriceIncreaseStatusConsented    PriceIncreaseStatus = 1 // consented, or notified of an increase that needs no consent
)

// TokenType is the type of an external purchase custom link token (tokenType).
type TokenType string

// External purchase token types.
const (
	TokenTypeAcquisition TokenType = "ACQUISITION"
	TokenTypeServices    TokenType = "SERVICES"
)

// PurchasePlatform is the platform of the original app purchase (originalPlatform).
type PurchasePlatform string

// Purchase platforms.
const (
	PurchasePlatformIOS      PurchasePlatform = "iOS"
	PurchasePlatformMacOS    PurchasePlatform = "macOS"
	PurchasePlatformTvOS     PurchasePlatform = "tvOS"
	PurchasePlatformVisionOS PurchasePlatform = "visionOS"
)
