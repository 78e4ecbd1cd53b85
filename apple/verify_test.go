package apple_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/apple/appletest"
)

func TestVerifyJWS(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	payload := map[string]any{"signedDate": apple.TimestampOf(signedDate), "bundleId": "com.example.app"}
	valid := sign(t, ca, payload)
	withX5C := func(x5c ...string) map[string]any { return map[string]any{"alg": "ES256", "x5c": x5c} }
	x5c := ca.X5C()
	garbage := make([]string, 1000)
	for i := range garbage {
		garbage[i] = "!"
	}

	tests := []struct {
		name     string
		verifier *apple.Verifier // default: trusts ca, clock at signedDate
		jws      func(t *testing.T) string
		want     apple.Reason // "" means it verifies
	}{
		{name: "valid", jws: func(*testing.T) string { return valid }},
		{name: "padded signature segment", jws: func(*testing.T) string {
			// Header and payload are signed as received, so only the signature may be padded.
			return valid + "==" // 64 bytes encode to 86 characters
		}},
		{name: "fractional signedDate", jws: func(t *testing.T) string {
			return sign(t, ca, json.RawMessage(`{"signedDate":1738368000123.456}`))
		}},
		{name: "x5c[2] differs from the trusted root", jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[0], x5c[1], other.X5C()[2]), payload)
		}},
		{name: "x5c[2] is another certificate entirely", jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[0], x5c[1], other.X5C()[0]), payload)
		}},
		{name: "extra header fields", jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "ES256", "x5c": x5c, "kid": "k", "typ": "JWT"}, payload)
		}},

		// Signature.
		{name: "tampered payload", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			return replacePart(valid, 1, b64url(`{"signedDate":`+mustJSON(t, apple.TimestampOf(signedDate))+`,"bundleId":"com.evil"}`))
		}},
		{name: "tampered header", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			return replacePart(valid, 0, b64url(mustJSON(t, map[string]any{"alg": "ES256", "x5c": x5c, "kid": "x"})))
		}},
		{name: "tampered signature", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(valid, ".")[2])
			sig[10] ^= 1
			return replacePart(valid, 2, base64.RawURLEncoding.EncodeToString(sig))
		}},
		{name: "signature of wrong length", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			return replacePart(valid, 2, b64url("short"))
		}},
		{name: "empty signature", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			return replacePart(valid, 2, "")
		}},
		{name: "signed by another CA's leaf under this chain", want: apple.ReasonBadSignature, jws: func(t *testing.T) string {
			return signWithHeader(t, other, withX5C(x5c...), payload)
		}},

		// Trust.
		{name: "wrong root", want: apple.ReasonUntrustedRoot, jws: func(t *testing.T) string { return sign(t, other, payload) }},
		{name: "only Apple's root trusted", want: apple.ReasonUntrustedRoot, verifier: apple.NewVerifier(nil),
			jws: func(*testing.T) string { return valid }},
		{name: "leaf not issued by x5c[1]", want: apple.ReasonUntrustedRoot, verifier: verifierFor(ca, other),
			jws: func(t *testing.T) string {
				return signWithHeader(t, ca, withX5C(x5c[0], other.X5C()[1], x5c[2]), payload)
			}},
		// These build their own CA: see special below.
		{name: "missing leaf OID", want: apple.ReasonMissingOID},
		{name: "missing intermediate OID", want: apple.ReasonMissingOID},
		{name: "intermediate not a CA", want: apple.ReasonIntermediateNotCA},

		// Chain length.
		{name: "chain of 2", want: apple.ReasonBadChainLength, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[:2]...), payload)
		}},
		{name: "chain of 4", want: apple.ReasonBadChainLength, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(append(x5c, x5c[2])...), payload)
		}},
		{name: "chain of 1", want: apple.ReasonBadChainLength, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[0]), payload)
		}},
		{name: "no x5c", want: apple.ReasonBadChainLength, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "ES256"}, payload)
		}},
		{name: "x5c with 1000 entries", want: apple.ReasonBadChainLength, jws: func(t *testing.T) string {
			// Garbage entries: bad_chain_length (not bad_certificate) shows none was decoded.
			return signWithHeader(t, ca, withX5C(garbage...), payload)
		}},

		// Algorithm.
		{name: "alg none", want: apple.ReasonBadAlgorithm, jws: func(t *testing.T) string {
			return replacePart(signWithHeader(t, ca, map[string]any{"alg": "none", "x5c": x5c}, payload), 2, "")
		}},
		{name: "alg HS256", want: apple.ReasonBadAlgorithm, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "HS256", "x5c": x5c}, payload)
		}},
		{name: "alg RS256", want: apple.ReasonBadAlgorithm, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "RS256", "x5c": x5c}, payload)
		}},
		{name: "alg es256", want: apple.ReasonBadAlgorithm, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "es256", "x5c": x5c}, payload)
		}},
		{name: "alg missing", want: apple.ReasonBadAlgorithm, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"x5c": x5c}, payload)
		}},

		// Time.
		{name: "chain expired at signedDate", want: apple.ReasonExpiredChain, jws: func(t *testing.T) string {
			return sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(caTo.Add(time.Millisecond))})
		}},
		{name: "chain valid now but not yet at signedDate", want: apple.ReasonExpiredChain,
			verifier: verifierFor(ca).WithClock(fixedClock(signedDate)),
			jws: func(t *testing.T) string {
				return sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(caFrom.Add(-time.Hour))})
			}},
		{name: "valid at signedDate though expired now", verifier: verifierFor(ca).WithClock(fixedClock(caTo.AddDate(5, 0, 0))),
			jws: func(*testing.T) string { return valid }},
		{name: "only the root expired at signedDate", want: apple.ReasonExpiredChain},
		{name: "only the intermediate expired at signedDate", want: apple.ReasonExpiredChain},
		{name: "no signedDate, clock inside validity", jws: func(t *testing.T) string {
			return sign(t, ca, map[string]any{"bundleId": "x"})
		}},
		{name: "no signedDate, clock outside validity", want: apple.ReasonExpiredChain,
			verifier: verifierFor(ca).WithClock(fixedClock(caTo.AddDate(0, 0, 1))),
			jws:      func(t *testing.T) string { return sign(t, ca, map[string]any{"bundleId": "x"}) }},
		{name: "null signedDate falls back to the clock", jws: func(t *testing.T) string {
			return sign(t, ca, json.RawMessage(`{"signedDate":null}`))
		}},
		{name: "receiptCreationDate when no signedDate", want: apple.ReasonExpiredChain,
			jws: func(t *testing.T) string {
				return sign(t, ca, map[string]any{"receiptCreationDate": apple.TimestampOf(caTo.AddDate(1, 0, 0))})
			}},

		// Malformed input.
		{name: "empty", want: apple.ReasonMalformed, jws: func(*testing.T) string { return "" }},
		{name: "two parts", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return valid[:strings.LastIndex(valid, ".")]
		}},
		{name: "four parts", want: apple.ReasonMalformed, jws: func(*testing.T) string { return valid + ".x" }},
		{name: "bad base64 in header", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 0, "e30*")
		}},
		{name: "bad base64 in payload", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 1, "%%%")
		}},
		{name: "bad base64 in signature", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 2, "a b")
		}},
		{name: "header not JSON", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 0, b64url("alg=ES256"))
		}},
		{name: "header a JSON array", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 0, b64url(`["ES256"]`))
		}},
		{name: "x5c not strings", want: apple.ReasonMalformed, jws: func(*testing.T) string {
			return replacePart(valid, 0, b64url(`{"alg":"ES256","x5c":[1,2,3]}`))
		}},
		{name: "payload not a JSON object", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return sign(t, ca, json.RawMessage(`"text"`))
		}},
		{name: "payload not JSON", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return sign(t, ca, []byte(`{"signedDate":`))
		}},
		{name: "signedDate not a number", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return sign(t, ca, json.RawMessage(`{"signedDate":"yesterday"}`))
		}},
		{name: "signedDate out of range", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return sign(t, ca, json.RawMessage(`{"signedDate":1e300}`))
		}},
		{name: "huge header", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, map[string]any{"alg": "ES256", "x5c": x5c, "pad": strings.Repeat("a", apple.MaxHeaderBytes)}, payload)
		}},
		{name: "x5c with 1000 real certificates", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			many := make([]string, 1000)
			for i := range many {
				many[i] = x5c[i%3]
			}
			return signWithHeader(t, ca, withX5C(many...), payload)
		}},
		{name: "huge JWS", want: apple.ReasonMalformed, jws: func(t *testing.T) string {
			return sign(t, ca, map[string]any{"signedDate": apple.TimestampOf(signedDate), "pad": strings.Repeat("a", apple.MaxJWSBytes)})
		}},

		// Certificates.
		{name: "x5c entry not base64", want: apple.ReasonBadCertificate, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[0], "!!", x5c[2]), payload)
		}},
		{name: "x5c entry not DER", want: apple.ReasonBadCertificate, jws: func(t *testing.T) string {
			return signWithHeader(t, ca, withX5C(x5c[0], x5c[1], base64.StdEncoding.EncodeToString([]byte("not a certificate"))), payload)
		}},
		{name: "x5c entry base64url instead of base64", want: apple.ReasonBadCertificate, jws: func(t *testing.T) string {
			u := x5c[0][:40] + "-_" + x5c[0][42:]
			return signWithHeader(t, ca, withX5C(u, x5c[1], x5c[2]), payload)
		}},
	}

	// Cases that need their own CA.
	special := map[string]func(t *testing.T) (string, *apple.Verifier){
		"missing leaf OID": func(t *testing.T) (string, *apple.Verifier) {
			bad := newCAWith(t, appletest.Options{NoLeafOID: true})
			return sign(t, bad, payload), verifierFor(bad)
		},
		"missing intermediate OID": func(t *testing.T) (string, *apple.Verifier) {
			bad := newCAWith(t, appletest.Options{NoIntermediateOID: true})
			return sign(t, bad, payload), verifierFor(bad)
		},
		"intermediate not a CA": func(t *testing.T) (string, *apple.Verifier) {
			bad := newCAWith(t, appletest.Options{IntermediateNotCA: true})
			return sign(t, bad, payload), verifierFor(bad)
		},
		"only the root expired at signedDate": func(t *testing.T) (string, *apple.Verifier) {
			bad := newCAWith(t, appletest.Options{Root: &appletest.Validity{NotBefore: caFrom, NotAfter: signedDate.Add(-time.Hour)}})
			return sign(t, bad, payload), verifierFor(bad)
		},
		"only the intermediate expired at signedDate": func(t *testing.T) (string, *apple.Verifier) {
			bad := newCAWith(t, appletest.Options{Intermediate: &appletest.Validity{NotBefore: caFrom, NotAfter: signedDate.Add(-time.Hour)}})
			return sign(t, bad, payload), verifierFor(bad)
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.verifier
			if v == nil {
				v = verifierFor(ca)
			}
			var jws string
			if f, ok := special[tt.name]; ok {
				jws, v = f(t)
			} else {
				jws = tt.jws(t)
			}
			got, err := v.VerifyJWS(jws)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("VerifyJWS: %v", err)
				}
				if !json.Valid(got) {
					t.Fatalf("payload %q is not JSON", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyJWS succeeded, want %s", tt.want)
			}
			t.Log(err)
			if r := apple.ReasonOf(err); r != tt.want {
				t.Fatalf("reason %q, want %q (error: %v)", r, tt.want, err)
			}
			var ve *apple.VerificationError
			if !errors.As(err, &ve) || ve.Err == nil {
				t.Fatalf("error %#v is not a *VerificationError with a cause", err)
			}
			if !strings.HasPrefix(err.Error(), "verify jws: "+string(tt.want)+": ") {
				t.Fatalf("error %q does not start with %q", err, "verify jws: "+string(tt.want)+": ")
			}
			if apple.IsRetryable(err) {
				t.Fatalf("IsRetryable(%v) = true", err)
			}
			if got != nil {
				t.Fatalf("payload %q returned with an error", got)
			}
		})
	}
}

func TestVerifyJWSPayloadIsExact(t *testing.T) {
	ca := newCA(t)
	raw := `{"signedDate": 1738368000000, "z": [1, 2.50, "x"],  "a": {}}`
	got, err := verifierFor(ca).VerifyJWS(sign(t, ca, []byte(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != raw {
		t.Fatalf("payload %q, want %q", got, raw)
	}
}

func TestVerificationErrorMessage(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	_, err := verifierFor(ca).VerifyJWS(sign(t, other, map[string]any{"signedDate": apple.TimestampOf(signedDate)}))
	want := "verify jws: untrusted_root: x509: certificate signed by unknown authority"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
}

func TestReasonOf(t *testing.T) {
	ve := &apple.VerificationError{Reason: apple.ReasonBadSignature, Err: errors.New("x")}
	tests := []struct {
		err  error
		want apple.Reason
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{ve, apple.ReasonBadSignature},
		{errors.Join(errors.New("wrapped"), ve), apple.ReasonBadSignature},
	}
	for _, tt := range tests {
		if got := apple.ReasonOf(tt.err); got != tt.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if apple.IsRetryable(tt.err) {
			t.Errorf("IsRetryable(%v) = true", tt.err)
		}
	}
}

func BenchmarkVerifyNotification(b *testing.B) {
	ca := newCA(b)
	v := verifierFor(ca)
	signed := signNotification(b, ca, appletest.Notification{
		Type: "DID_RENEW", SignedDate: signedDate,
		Transaction: &apple.Transaction{TransactionID: "1"}, RenewalInfo: &apple.RenewalInfo{},
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyNotification(signed); err != nil {
			b.Fatal(err)
		}
	}
}
