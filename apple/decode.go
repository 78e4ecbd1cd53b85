package apple

// DecodeJWS returns the payload of a compact JWS without verifying anything:
// for display and for data Apple does not sign. Never trust what it returns.
func DecodeJWS(jws string) ([]byte, error) { return decodeUnverified(jws) }
