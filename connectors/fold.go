package connectors

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// foldCase maps every rune of s to the smallest rune of its simple case
// folding orbit (the one unicode.SimpleFold cycles through), so two strings
// fold to the same string exactly when strings.EqualFold says they are
// equal: EqualFold compares rune by rune under the same orbits. (Lower-
// or upper-casing is not enough: 'K' (U+212A KELVIN SIGN), 'k' and 'K' are
// one orbit, and so are 'ſ', 's' and 'S'.) ASCII letters fold to upper case.
// Invalid UTF-8 bytes are kept (the hub's keys are valid UTF-8).
func foldCase(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest rune of an ASCII letter's orbit is its upper case.
		return strings.ToUpper(s)
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
		b.WriteRune(smallestInOrbit(r))
		i += size
	}
	return b.String()
}

func smallestInOrbit(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}
