package connectors

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// foldCase maps every rune of s to one representative of its simple case
// folding orbit (the runes unicode.SimpleFold cycles through), so two
// strings fold to the same string exactly when strings.EqualFold says they
// are equal: EqualFold compares rune by rune under the same orbits. (Lower-
// or upper-casing alone is not enough: 'K' (U+212A KELVIN SIGN), 'k' and
// 'K' are one orbit, and so are 'ſ', 's' and 'S'; while 'İ' lower-cases to
// 'i' but is not EqualFold to it.) The representative is the lower case of
// the orbit's smallest rune when that is in the orbit, else the smallest
// rune, so keys read as they mostly are written: "m-000001". Invalid UTF-8
// bytes are kept (the hub's keys are valid UTF-8).
func foldCase(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// An ASCII letter's orbit's smallest rune is its upper case, and
		// its lower case is in the orbit.
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteRune(representative(r))
		i += size
	}
	return b.String()
}

// representative is the rune every member of r's orbit folds to: the
// lower case of the orbit's smallest rune if that is in the orbit, else the
// smallest rune. Both depend on the orbit only, not on which member r is.
func representative(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		min = minRune(min, f)
	}
	lower := unicode.ToLower(min)
	for f := unicode.SimpleFold(min); ; f = unicode.SimpleFold(f) {
		if f == lower {
			return lower
		}
		if f == min {
			return min
		}
	}
}

func minRune(a, b rune) rune {
	if b < a {
		return b
	}
	return a
}
