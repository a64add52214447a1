package config

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Position is a place in a config file. Line and Column count from 1; 0
// means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats p as FILE:LINE:COL (FILE:LINE when the column is unknown).
func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem in a config file.
type Error struct {
	Position
	// Path is the dotted key path at fault (syncs.members-to-crm.to); empty
	// for a problem with the file as a whole.
	Path string
	// Message says what is wrong and what would be valid. It never holds a
	// secret value.
	Message string
}

// Error formats e as "FILE:LINE:COL: path.to.key: message". A path with a
// key that does not print (a newline, say) is quoted, so that the problem
// stays on one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Position.String())
	b.WriteString(": ")
	if e.Path != "" {
		if strings.IndexFunc(e.Path, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			b.WriteString(strconv.Quote(e.Path))
		} else {
			b.WriteString(e.Path)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem Load found, in file order. Load returns it (as an
// error) when there is at least one; get it back with errors.As.
type Errors []*Error

// Error lists the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// LogValue logs the problems as a list.
func (es Errors) LogValue() slog.Value {
	return slog.StringValue(es.Error())
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Path < b.Path
	})
}
