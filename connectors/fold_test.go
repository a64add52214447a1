package connectors_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

func TestKeysCaseInsensitiveFold(t *testing.T) {
	fold := connectors.KeysCaseInsensitive.Fold
	same := [][2]string{
		{"case-ab", "CASE-AB"}, {"M-000001", "m-000001"}, {"k", "\u212a"}, {"s", "\u017f"},
		{"Straße", "STRAßE"}, {"Σίσυφος", "ΣΊΣΥΦΟΣ"},
	}
	for _, p := range same {
		if fold(p[0]) != fold(p[1]) {
			t.Errorf("Fold(%q) = %q, Fold(%q) = %q: want one key", p[0], fold(p[0]), p[1], fold(p[1]))
		}
	}
	if fold("ab-1") == fold("ab-2") {
		t.Error("different keys fold together")
	}
	if got := connectors.KeysExact.Fold("AbC"); got != "AbC" {
		t.Errorf("KeysExact.Fold changed the key: %q", got)
	}
}

// FuzzKeysCaseInsensitiveFold: two keys fold to one exactly when
// strings.EqualFold (how the Salesforce emulator matches external ids)
// says they are equal.
func FuzzKeysCaseInsensitiveFold(f *testing.F) {
	for _, s := range []string{"a", "A", "\u212a", "k", "ß", "ẞ", "ǅ", "ǆ", "Ǆ", "İ", "i", "ı", "ﬀ"} {
		f.Add(s, strings.ToUpper(s))
		f.Add(s, "k")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			t.Skip()
		}
		fold := connectors.KeysCaseInsensitive.Fold
		if got, want := fold(a) == fold(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("Fold(%q)=%q Fold(%q)=%q equal=%v, EqualFold=%v", a, fold(a), b, fold(b), got, want)
		}
	})
}
