package relay

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
)

// errShape is returned for a body that is not a JSON object with a string
// member "signedPayload".
var errShape = errors.New(`body must be a JSON object with a string "signedPayload"`)

// checkShape is the only look the ingest path takes at a body: a single pass
// over the top-level object that finds a "signedPayload" member whose value is
// a non-empty string. Nested values are skipped by bracket counting, not
// validated: full decoding and verification happen after the body is stored.
// The key must appear literally (Apple never escapes it).
func checkShape(b []byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errShape
	}
	i++
	found := false
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' && !found {
			return errShape
		}
		keyStart := i
		end, ok := skipString(b, i)
		if !ok {
			return errShape
		}
		key := b[keyStart:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errShape
		}
		i = skipSpace(b, i+1)
		if string(key) == `"signedPayload"` {
			vEnd, ok := skipString(b, i)
			if !ok || vEnd-i <= 2 {
				return errShape
			}
			found = true
			i = vEnd
		} else if i, ok = skipValue(b, i); !ok {
			return errShape
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return errShape
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			if !found || skipSpace(b, i+1) != len(b) {
				return errShape
			}
			return nil
		default:
			return errShape
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at i. A
// notification is mostly one long base64url string, and this is the ingest
// path's only pass over it: bytes.IndexByte finds the closing quote and any
// backslash before it with vector instructions, and control characters are
// looked for a word at a time. Each byte is searched a bounded number of
// times, however many escapes the string holds.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i++
	quote := -1 // the first '"' at or after i (len(b) for none), found again once i passes it
	for {
		if quote < i {
			quote = len(b)
			if q := bytes.IndexByte(b[i:], '"'); q >= 0 {
				quote = i + q
			}
		}
		end := quote
		if k := bytes.IndexByte(b[i:end], '\\'); k >= 0 {
			end = i + k
		}
		if c := indexControl(b[i:end]); c >= 0 {
			return i + c, false
		}
		switch {
		case end == len(b):
			return end, false
		case end == quote:
			return end + 1, true
		}
		i = end + 2 // a backslash and the byte it escapes
		if i > len(b) {
			return len(b), false
		}
	}
}

// indexControl returns the index of the first control character in s (a
// byte below 0x20, which a JSON string may not hold), or -1.
func indexControl(s []byte) int {
	i := 0
	for ; i+32 <= len(s); i += 32 {
		w := s[i : i+32 : i+32]
		a, b := binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
		c, d := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[24:])
		if (below20(a)|below20(b)|below20(c)|below20(d))&highs != 0 {
			break
		}
	}
	for ; i+8 <= len(s) && below20(binary.LittleEndian.Uint64(s[i:]))&highs == 0; i += 8 {
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 {
			return i
		}
	}
	return -1
}

// Bytes repeated across a word, for below20.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// below20, masked with highs, is non-zero exactly when some byte of x is
// below 0x20: subtracting 0x20 from such a byte borrows into its high bit,
// which was clear.
func below20(x uint64) uint64 { return (x - ones*0x20) &^ x }

// skipValue returns the index after the JSON value starting at i. Objects and
// arrays are skipped by counting brackets outside strings.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return i, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return i, false
	default: // number, true, false, null
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i, i > start
	}
}

// signedPayloadOf returns a stored body's signedPayload, as encoding/json
// reads it; ok is false for a body that is not a JSON object with a string
// signedPayload. A body as Apple sends it, the one member with a value of
// plain ASCII (a JWS is base64url and dots), is read in one pass without
// the decoder, which would validate and unquote 4 KiB a notification; any
// other body goes through encoding/json.
func signedPayloadOf(body []byte) (payload string, ok bool) {
	if payload, ok := plainSignedPayload(body); ok {
		return payload, true
	}
	var v struct {
		SignedPayload *string `json:"signedPayload"`
	}
	if json.Unmarshal(body, &v) != nil || v.SignedPayload == nil {
		return "", false
	}
	return *v.SignedPayload, true
}

// plainSignedPayload reads body if it is exactly {"signedPayload":"…"}, with
// any whitespace between tokens and a plain string value; ok is false for
// every other body.
func plainSignedPayload(body []byte) (string, bool) {
	const key = `"signedPayload"`
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", false
	}
	i = skipSpace(body, i+1)
	if len(body)-i <= len(key) || string(body[i:i+len(key)]) != key {
		return "", false
	}
	i = skipSpace(body, i+len(key))
	if i >= len(body) || body[i] != ':' {
		return "", false
	}
	i = skipSpace(body, i+1)
	end, plain := plainString(body, i)
	if !plain {
		return "", false
	}
	j := skipSpace(body, end)
	if j >= len(body) || body[j] != '}' || skipSpace(body, j+1) != len(body) {
		return "", false
	}
	return string(body[i+1 : end-1]), true
}

// plainString returns the index after the JSON string starting at i, and
// whether the string holds only printable ASCII without escapes, so that its
// bytes are its value.
func plainString(b []byte, i int) (int, bool) {
	end, ok := skipString(b, i) // it refuses control characters
	if !ok {
		return i, false
	}
	for _, c := range b[i+1 : end-1] {
		if c == '\\' || c > 0x7e {
			return i, false
		}
	}
	return end, true
}
