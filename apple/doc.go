// Package apple speaks Apple's side of asnrelay: it verifies and decodes App Store signed data
// (JWS) such as App Store Server Notifications V2, holds the decoded models, and calls the App
// Store Server API.
//
// # Verification
//
// A [Verifier] checks a compact JWS the way Apple's own App Store Server Libraries do when
// online (OCSP) checks are off:
//
//   - the JWS has three base64url parts and its header says alg ES256;
//   - the header's x5c holds exactly three standard-base64 DER certificates: leaf,
//     intermediate, root;
//   - the chain is built from the leaf through x5c[1] to one of the trusted roots (Apple Root
//     CA - G3, embedded, plus any configured extra roots). x5c[2] is not compared with the
//     trusted roots: Apple's libraries ignore it, and Apple's own test data carries an x5c[2]
//     that differs from its test root;
//   - the intermediate is a CA, the leaf carries OID 1.2.840.113635.100.6.11.1 and the
//     intermediate OID 1.2.840.113635.100.6.2.1;
//   - every certificate is valid at the payload's signedDate (receiptCreationDate for an app
//     transaction), not at the time of verification, so a stored notification verifies the
//     same way when it is replayed years later. Only a payload that has neither date is
//     checked at the time of verification;
//   - the signature is a raw 64-byte R‖S ECDSA P-256 signature by the leaf's key over
//     "header.payload".
//
// Failures are *[VerificationError] values whose [Reason] is stable and meant for storage,
// metrics and display. None of them is retryable: without OCSP nothing depends on the
// network, so the same input always gives the same answer.
//
// # Unsigned environments
//
// Data from the Xcode and LocalTesting environments is signed by Xcode or StoreKit Testing,
// not by Apple; see [IsUnsignedEnvironment]. This package never accepts it as verified. A caller
// that wants it (asnrelay does, only for apps that list the environment) decodes it with
// [DecodeNotification] and treats it as unverified data.
//
// # Models
//
// [Notification], [Transaction], [RenewalInfo] and [AppTransaction] carry every field Apple
// documents. Enumerations are named string (or, where Apple sends numbers, integer) types with
// constants for the documented values; unknown values decode without error. Each decoded
// payload keeps its exact JSON in Raw, so fields Apple adds later are never lost.
//
// # App Store Server API
//
// A [Client] calls the App Store Server API for one app in one environment, authenticated
// with the app's In-App Purchase key ([ParsePrivateKey]): a fresh ES256 token per request
// ([Client.Token]). It covers the endpoints asnrelay needs: Get Transaction Info, Get
// Transaction History (v2), Get All Subscription Statuses, Look Up Order ID, Get Refund
// History, Send Consumption Information (the current v2 endpoint), Request a Test
// Notification, Get Test Notification Status and Get Notification History, with iterators
// over the paged ones.
//
// Every request is rate limited per endpoint (Apple's published limits by default), bounded
// in time ([ClientOptions].Timeout) and size ([MaxResponseBytes]), and retried, with
// exponential backoff and jitter, when Apple says it may succeed later: HTTP 429 (honouring
// Retry-After, a UNIX time in milliseconds), 5xx, and the retryable error codes. Failures are
// [*APIError] (matching [ErrUnauthorized], [ErrNotFound], [ErrRateLimited]) or
// [*NetworkError]; [IsRetryable] tells whether to keep the work for later.
//
// Apple documents one fallback between environments, and only for Get Transaction Info: a
// transaction Production does not know (errorCode 4040010) may be a Sandbox one; see
// [GetTransactionInfoAnyEnvironment]. The client never falls back on its own.
//
// [SignPromotionalOffer] and [SignPromotionalOfferV2] sign promotional offers with the same
// key. The fake API in package appletest serves tests.
package apple
