package mappings

import (
	"math/rand/v2"
	"testing"
	"time"
)

// formatReusing must write what time.Format writes, reusing the input only
// when it starts with exactly that.
func TestFormatReusing(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	layouts := []string{time.DateOnly, "2006-01-02T15:04:05.000Z", time.RFC3339, "02/01/2006"}
	years := []int{-1, 0, 1, 999, 1990, 2024, 9999, 10000}
	for range 20000 {
		tm := time.Date(years[r.IntN(len(years))], time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), time.UTC)
		layout := layouts[r.IntN(len(layouts))]
		want := tm.Format(layout)
		for _, in := range []string{want, " " + want + " ", want + "T10:00:00Z", "x" + want, want[:len(want)-1]} {
			if got := formatReusing(nil, tm, layout, in); got != want {
				t.Fatalf("formatReusing(%v, %q, %q) = %q, want %q", tm, layout, in, got, want)
			}
		}
	}
}
