package mappings

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrFiltered is returned by Apply when the mapping's `when` condition is
// false for a record: the record is not for this target. The pipeline records
// it as skipped ("filtered"), it is not an error.
var ErrFiltered = errors.New("mappings: record filtered out by the mapping's when condition")

// ErrUnresolved is wrapped by the error Apply returns when a `lookup` finds no
// cross-reference entry and the field says `missing: retry` (the default):
// the related record may not be synced yet, so the record is worth retrying
// later. It is not a *RecordError.
var ErrUnresolved = errors.New("cross-reference has no entry yet")

// RecordError is a permanent mapping failure of one record: retrying it
// cannot help (a required value is missing, an enum value has no
// translation, an expression fails on this input). Field is the target field
// path ("Status__c", "Address.City", "Lines[2].Sku", or "when").
type RecordError struct {
	// Field is the target field being mapped when the failure happened.
	Field string
	// Err says what is wrong.
	Err error
}

// Error implements error: `field Status__c: ...`.
func (e *RecordError) Error() string {
	return "field " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// Pos is a position in a YAML file, 1-based; zero when unknown.
type Pos struct {
	// Line is the 1-based line.
	Line int `json:"line"`
	// Col is the 1-based column.
	Col int `json:"col"`
}

// Problem is one problem found in a mapping, at compile time or by
// CheckSchema: where it is, what is wrong, and how to fix it when known.
type Problem struct {
	// File is the file holding the mapping ("" when built in code).
	File string `json:"file,omitempty"`
	// Pos is where in File; zero when unknown.
	Pos Pos `json:"pos"`
	// Path names the construct: "fields.Status__c.map", "when".
	Path string `json:"path,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"message"`
	// Hint suggests a fix ("did you mean `lower`?"); may be empty.
	Hint string `json:"hint,omitempty"`
}

// Error formats the problem as `FILE:LINE:COL: PATH: MSG; HINT`.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteByte(':')
	}
	if p.Pos.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", p.Pos.Line, p.Pos.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString("; ")
		b.WriteString(p.Hint)
	}
	return b.String()
}

// Problems is every problem found in one pass; ParseFile, ParseNode and
// Compile return it as their error. Each problem is one line.
type Problems []*Problem

// Error joins the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Problem.
func (ps Problems) Unwrap() []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// sortProblems orders problems by position, keeping the order of equal ones.
func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// didYouMean returns `did you mean "x"?` for the candidate closest to s, or
// "" when none is close enough.
func didYouMean(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" {
		return "did you mean `" + c + "`?"
	}
	return ""
}

// closest returns the candidate nearest to s by edit distance, or "" when
// none is within a third of the length (at least 1, at most 3 edits). A
// case-insensitive exact match always wins.
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if c == s {
			continue
		}
		if strings.ToLower(c) == ls {
			return c
		}
		d := editDistance(ls, strings.ToLower(c))
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := len(s) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance (Levenshtein with
// adjacent transpositions) between a and b, on bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// quoteList renders names as "`a`, `b`, `c`", at most max of them.
func quoteList(names []string, max int) string {
	var b strings.Builder
	for i, n := range names {
		if i == max {
			fmt.Fprintf(&b, ", … (%d more)", len(names)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + n + "`")
	}
	return b.String()
}
