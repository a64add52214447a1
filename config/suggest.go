package config

import (
	"fmt"
	"strings"
)

// distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours
// each cost 1 ("cmr" is 1 from "crm").
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// suggest returns the candidate closest to s, if it is close enough to be
// a likely typo: at most a third of the longer word's length (at least 1),
// compared case-insensitively. Ties go to the earlier candidate. Failing
// that, a candidate that starts with a near copy of s ("timout" for
// "timeout_seconds") is suggested.
func suggest(s string, candidates []string) (string, bool) {
	ls := strings.ToLower(s)
	best, bestD := "", -1
	for _, c := range candidates {
		d := distance(ls, strings.ToLower(c))
		limit := max(1, max(len(s), len(c))/3)
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	if bestD >= 0 || len(s) < 4 {
		return best, bestD >= 0
	}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		for n := len(ls) - 1; n <= len(ls)+1 && n <= len(lc); n++ {
			if distance(ls, lc[:n]) <= 1 {
				return c, true
			}
		}
	}
	return "", false
}

// didYouMean returns `; did you mean "x"?` or "".
func didYouMean(s string, candidates []string) string {
	if c, ok := suggest(s, candidates); ok {
		return fmt.Sprintf(`; did you mean %q?`, c)
	}
	return ""
}

// list formats names for a message: "a, b, c", or "none" when empty.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
