package relay

import "errors"

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

// skipString returns the index after the JSON string starting at i.
func skipString(b []byte, i int) (int, bool) {
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
