package relay

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckShape(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"signedPayload":"a.b.c"}`, true},
		{" \n{ \"x\" : [1, {\"y\":\"}\"}], \"signedPayload\" : \"a.b.c\" , \"z\": null }\n", true},
		{`{"a":{"signedPayload":1},"signedPayload":"x\"y"}`, true},
		{`{"signedPayload":"e30.e30.\u00e9"}`, true},
		{``, false},
		{`   `, false},
		{`[]`, false},
		{`{}`, false},
		{`null`, false},
		{`"signedPayload"`, false},
		{`{"signedPayload":""}`, false},
		{`{"signedPayload":1}`, false},
		{`{"signedPayload":null}`, false},
		{`{"signedPayload":["a"]}`, false},
		{`{"other":"a.b.c"}`, false},
		{`{"signedPayload":"a.b.c"`, false},
		{`{"signedPayload":"a.b.c"} trailing`, false},
		{`{"signedPayload":"a.b.c",}`, false},
		{`{"signedPayload" "a.b.c"}`, false},
		{`{"signedPayload":"a` + "\n" + `b"}`, false},
		{`{"x":{"y":[1,2,"]"]}, "signedPayload":"p"}`, true},
		{`{"x":{"y":[1,2}, "signedPayload":"p"`, false},
	} {
		err := checkShape([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("checkShape(%q) = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}

// FuzzCheckShape: never panics, and whatever it accepts, encoding/json reads
// as an object with a string signedPayload (or at least does not contradict it
// for well-formed JSON).
func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{`{"signedPayload":"a.b.c"}`, `{"a":[{"b":"}"}],"signedPayload":"x"}`, `{`, `{"signedPayload":"\"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkShape(b)
		if err != nil || !json.Valid(b) {
			return
		}
		var v struct {
			SignedPayload *string `json:"signedPayload"`
		}
		if jerr := json.Unmarshal(b, &v); jerr != nil || v.SignedPayload == nil || *v.SignedPayload == "" {
			t.Fatalf("checkShape accepted %q, but encoding/json reads %v / %v", b, jerr, v.SignedPayload)
		}
	})
}

func TestCleanKeepsOnlyShortPrintableASCII(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"DID_RENEW", "DID_RENEW"},
		{"002e14d5-51f5-4503-b5a8-c3a1af68eb20", "002e14d5-51f5-4503-b5a8-c3a1af68eb20"},
		{"a\nb", ""},
		{"a\x00b", ""},
		{"evil\r\nX-Injected: 1", ""},
		{"caf\u00e9", ""},
		{strings.Repeat("x", 200), strings.Repeat("x", 200)},
		{strings.Repeat("x", 201), ""},
	} {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// skipStringByByte is the plain definition skipString must agree with.
func skipStringByByte(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		}
	}
	return i, false
}

func TestSkipStringAtEveryAlignment(t *testing.T) {
	// Each special byte at every offset of an 8-byte word, and at the end.
	for _, special := range []string{`"`, `\"`, `\\`, "\x00", "\x1f", "\n", `\`} {
		for n := 0; n < 20; n++ {
			b := []byte(`"` + strings.Repeat("a", n) + special + `b"`)
			end, ok := skipString(b, 0)
			wantEnd, wantOK := skipStringByByte(b, 0)
			if ok != wantOK || (ok && end != wantEnd) {
				t.Errorf("skipString(%q) = %d, %v; want %d, %v", b, end, ok, wantEnd, wantOK)
			}
		}
	}
}

// FuzzSkipString: skipString agrees with the byte-by-byte definition.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"abcdefgh\\"`, "\"abcdefghij\x01\"", `"unterminated`, `"ab\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, ok := skipString(b, 0)
		wantEnd, wantOK := skipStringByByte(b, 0)
		if ok != wantOK || (ok && end != wantEnd) {
			t.Fatalf("skipString(%q) = %d, %v; want %d, %v", b, end, ok, wantEnd, wantOK)
		}
	})
}

func BenchmarkCheckShape(b *testing.B) {
	body := asnBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := checkShape(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSignedPayloadOfReadsWhatEncodingJSONReads(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		ok         bool
	}{
		{`{"signedPayload":"a.b.c"}`, "a.b.c", true},
		{" {\n\t\"signedPayload\" : \"a.b.c\" }\r\n", "a.b.c", true},
		{`{"signedPayload":""}`, "", true},
		{`{"signedPayload":"a\/b"}`, "a/b", true},       // an escape: the decoder's reading
		{`{"signedPayload":"caf\u00e9"}`, "café", true}, // so is this
		{`{"signedPayload":"a","signedPayload":"b"}`, "b", true},
		{`{"SignedPayload":"a"}`, "a", true}, // encoding/json matches names without case
		{`{"signedPayload":"a","other":1}`, "a", true},
		{`{"signedPayload":"a"} x`, "", false},
		{`{"signedPayload":1}`, "", false},
		{`{"signedPayload":"a"`, "", false},
		{`{"other":"a"}`, "", false},
		{`[]`, "", false},
		{``, "", false},
	} {
		got, ok := signedPayloadOf([]byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("signedPayloadOf(%q) = %q, %v; want %q, %v", tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzSignedPayloadOf: the fast path and encoding/json agree on every body.
func FuzzSignedPayloadOf(f *testing.F) {
	for _, s := range []string{`{"signedPayload":"a.b.c"}`, ` { "signedPayload" : "x" } `, `{"signedPayload":"\u0041"}`,
		`{"signedPayload":"a"}}`, `{"signedPayload":"` + "\x7f" + `"}`, `{"signedPayload":"\xff"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := signedPayloadOf(b)
		var v struct {
			SignedPayload *string `json:"signedPayload"`
		}
		err := json.Unmarshal(b, &v)
		wantOK := err == nil && v.SignedPayload != nil
		if ok != wantOK || (ok && got != *v.SignedPayload) {
			t.Fatalf("signedPayloadOf(%q) = %q, %v; encoding/json reads %v, %v", b, got, ok, v.SignedPayload, err)
		}
	})
}

// A string of escapes, or of quotes escaped one after another, is searched
// in linear time: were the closing quote looked for again after every
// escape, these 8 MiB bodies would take hours, not milliseconds.
func TestSkipStringManyEscapesIsLinear(t *testing.T) {
	for _, esc := range []string{`\\`, `\"`, `\n`} {
		b := []byte(`"` + strings.Repeat(esc, 4<<20) + `"` + strings.Repeat("x", 64))
		end, ok := skipString(b, 0)
		if !ok || end != len(b)-64 {
			t.Fatalf("%q × 4 Mi: skipString = %d, %v; want %d, true", esc, end, ok, len(b)-64)
		}
	}
}
