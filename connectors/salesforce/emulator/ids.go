package emulator

import "strings"

const (
	base62        = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	checksumChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
)

// idSuffix computes the 3-character case-safe suffix that turns a 15-character
// Salesforce id into its 18-character form: one character per 5-character chunk,
// encoding which characters of the chunk are upper-case letters.
func idSuffix(id15 string) string {
	var out [3]byte
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		out[chunk] = checksumChars[n]
	}
	return string(out[:])
}

// makeID returns the 18-character id number n of an object with the given key prefix:
// prefix, a pod marker "Em", a reserved "0", nine base-62 digits, and the suffix.
func makeID(prefix string, n uint64) string {
	b := []byte(prefix + "Em0000000000")
	for i := 14; n > 0 && i >= 6; i-- {
		b[i] = base62[n%62]
		n /= 62
	}
	return string(b) + idSuffix(string(b))
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// normalizeID returns the 18-character form of a 15- or 18-character id; ok is false
// when s is not a well-formed id.
func normalizeID(s string) (string, bool) {
	switch len(s) {
	case 15:
		if !isAlnum(s) {
			return "", false
		}
		return s + idSuffix(s), true
	case 18:
		if !isAlnum(s) {
			return "", false
		}
		want := idSuffix(s[:15])
		if !strings.EqualFold(want, s[15:]) {
			return "", false
		}
		return s[:15] + want, true
	}
	return "", false
}
