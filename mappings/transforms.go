package mappings

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones work on hosts without a tz database
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// transformStep is one compiled transform of a chain.
type transformStep struct {
	name string
	fn   func(v any) (any, error)
	// whole is true for transforms that take an array as a whole (join,
	// first, last); the others apply to each element of an array.
	whole bool
	// out is the kind of value it returns ("same": its input's).
	out string
	// sfn, when set, is fn on text without boxing (for chains of text
	// transforms).
	sfn textFn
	// sig identifies the transform with its arguments: two steps with the
	// same sig compute the same function.
	sig string
	// sep is join's separator.
	sep string
}

// transformOut is the kind of value each transform returns.
var transformOut = map[string]string{
	"number": "number", "integer": "number", "round": "number", "unix": "number", "unix_ms": "number",
	"boolean": "boolean", "parse_time": "time", "split": "array",
	"first": "same", "last": "same", "empty_to_null": "same",
}

type argKind uint8

const (
	argInt argKind = iota
	argString
)

// transformDef describes one built-in transform.
type transformDef struct {
	// Usage shows the call, e.g. `truncate(n)`.
	Usage string
	// Doc says what it does.
	Doc      string
	args     []argKind
	optional int // how many trailing args may be left out
	whole    bool
	build    func(args []any) (func(v any) (any, error), error)
	// text, when set, builds the transform as a function on text; build is
	// then derived from it.
	text func(args []any) (textFn, error)
}

// textFn is a transform on text. New text goes to the record's memory m,
// so that one record's text takes one allocation (see recordMem); m is nil
// outside a record.
type textFn func(m *recordMem, s string) (string, error)

var transforms map[string]*transformDef

func init() {
	transforms = map[string]*transformDef{
		"lower": {Usage: "lower", Doc: "lower-cases text", text: fixed(lowerText)},
		"upper": {Usage: "upper", Doc: "upper-cases text", text: fixed(upperText)},
		"trim": {Usage: "trim", Doc: "removes leading and trailing white space",
			text: fixed(func(_ *recordMem, s string) string { return strings.TrimSpace(s) })},
		"title":  {Usage: "title", Doc: "upper-cases the first letter of each word", text: fixed(titleText)},
		"digits": {Usage: "digits", Doc: "keeps only the digits", text: fixed(digitsText)},
		"truncate": {Usage: "truncate(n)", Doc: "keeps at most n characters", args: []argKind{argInt},
			text: func(a []any) (textFn, error) {
				n := a[0].(int)
				if n < 0 {
					return nil, errors.New("n must be ≥ 0")
				}
				return func(_ *recordMem, s string) (string, error) { return truncateRunes(s, n), nil }, nil
			}},
		"replace": {Usage: `replace("old", "new")`, Doc: "replaces every occurrence of old by new", args: []argKind{argString, argString},
			text: func(a []any) (textFn, error) {
				if a[0].(string) == "" {
					return nil, errors.New("the text to replace is empty")
				}
				r := strings.NewReplacer(a[0].(string), a[1].(string))
				return func(_ *recordMem, s string) (string, error) { return r.Replace(s), nil }, nil
			}},
		"empty_to_null": {Usage: "empty_to_null", Doc: "turns an empty or blank string into null (so `default` applies)",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
						return nil, nil
					}
					return v, nil
				}, nil
			}},
		"sha256": {Usage: "sha256", Doc: "hex SHA-256 of the text (hash PII before it leaves; trim and lower e-mails first)",
			text: fixed(sha256Text)},
		"e164": {Usage: `e164 | e164("US")`, Doc: "normalises a phone number to E.164 (+33612345678); the region (or calling code) is used for numbers written without one", args: []argKind{argString}, optional: 1,
			text: func(a []any) (textFn, error) {
				region := ""
				if len(a) > 0 {
					region = a[0].(string)
					if _, err := callingCode(region); err != nil {
						return nil, err
					}
				}
				return func(m *recordMem, s string) (string, error) { return toE164(m, s, region) }, nil
			}},
		"string": {Usage: "string", Doc: "renders a number, boolean or time as text",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) { return toText(v) }, nil
			}},
		"number": {Usage: "number", Doc: "parses text as a number (float)",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) { return toFloat(v) }, nil
			}},
		"integer": {Usage: "integer", Doc: "parses text as a whole number (fractions are truncated)",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					f, err := toFloat(v)
					if err != nil {
						return nil, err
					}
					if f > math.MaxInt64 || f < math.MinInt64 {
						return nil, fmt.Errorf("%v is out of the integer range", f)
					}
					return int64(f), nil
				}, nil
			}},
		"boolean": {Usage: "boolean", Doc: `parses "true"/"false", "yes"/"no", "1"/"0", 1/0`,
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) { return toBool(v) }, nil
			}},
		"round": {Usage: "round | round(n)", Doc: "rounds half away from zero, to n decimals (a whole number without n)", args: []argKind{argInt}, optional: 1,
			build: func(a []any) (func(any) (any, error), error) {
				n := -1
				if len(a) > 0 {
					n = a[0].(int)
					if n < 0 || n > 15 {
						return nil, errors.New("n must be between 0 and 15")
					}
				}
				return func(v any) (any, error) {
					f, err := toFloat(v)
					if err != nil {
						return nil, err
					}
					if n < 0 {
						r := math.Round(f)
						if r > math.MaxInt64 || r < math.MinInt64 {
							return r, nil
						}
						return int64(r), nil
					}
					return roundTo(f, n), nil
				}, nil
			}},
		"format_number": {Usage: `format_number(decimals) | format_number(decimals, ",")`, Doc: "renders a number as text with fixed decimals and an optional thousands separator", args: []argKind{argInt, argString}, optional: 1,
			build: func(a []any) (func(any) (any, error), error) {
				d := a[0].(int)
				if d < 0 || d > 15 {
					return nil, errors.New("decimals must be between 0 and 15")
				}
				sep := ""
				if len(a) > 1 {
					sep = a[1].(string)
				}
				return func(v any) (any, error) {
					f, err := toFloat(v)
					if err != nil {
						return nil, err
					}
					return formatNumber(f, d, sep), nil
				}, nil
			}},
		"date": {Usage: `date | date("Europe/Paris")`, Doc: "renders a time as a date, 2006-01-02 (in UTC or the given zone)", args: []argKind{argString}, optional: 1,
			build: timeFormatter("2006-01-02", 0), text: textTimeFormatter("2006-01-02", 0)},
		"datetime": {Usage: `datetime`, Doc: "renders a time as an ISO-8601 instant in UTC, 2006-01-02T15:04:05.000Z (what Salesforce takes)",
			build: timeFormatter("2006-01-02T15:04:05.000Z", -1), text: textTimeFormatter("2006-01-02T15:04:05.000Z", -1)},
		"format_time": {Usage: `format_time("layout") | format_time("layout", "zone")`, Doc: "renders a time with a Go layout (2006-01-02 15:04) or rfc3339, in UTC or the given zone", args: []argKind{argString, argString}, optional: 1,
			build: func(a []any) (func(any) (any, error), error) {
				return timeFormatter(a[0].(string), 1)(a)
			}},
		"parse_time": {Usage: `parse_time("layout") | parse_time("layout", "zone")`, Doc: "parses text with a Go layout; times without an offset are in UTC or the given zone", args: []argKind{argString, argString}, optional: 1,
			build: func(a []any) (func(any) (any, error), error) {
				layout := namedLayout(a[0].(string))
				loc := time.UTC
				if len(a) > 1 {
					var err error
					if loc, err = loadZone(a[1].(string)); err != nil {
						return nil, err
					}
				}
				return func(v any) (any, error) {
					if t, ok := v.(time.Time); ok {
						return t, nil
					}
					s, err := toText(v)
					if err != nil {
						return nil, err
					}
					t, err := time.ParseInLocation(layout, s, loc)
					if err != nil {
						return nil, fmt.Errorf("%q does not match the layout %q", s, layout)
					}
					return t, nil
				}, nil
			}},
		"unix": {Usage: "unix", Doc: "a time as Unix seconds",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					t, err := toTime(v, time.UTC)
					if err != nil {
						return nil, err
					}
					return t.Unix(), nil
				}, nil
			}},
		"unix_ms": {Usage: "unix_ms", Doc: "a time as Unix milliseconds",
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					t, err := toTime(v, time.UTC)
					if err != nil {
						return nil, err
					}
					return t.UnixMilli(), nil
				}, nil
			}},
		"split": {Usage: `split(",")`, Doc: "splits text into an array (elements trimmed, empty ones dropped)", args: []argKind{argString},
			build: func(a []any) (func(any) (any, error), error) {
				sep := a[0].(string)
				if sep == "" {
					return nil, errors.New("the separator is empty")
				}
				return func(v any) (any, error) {
					s, err := toText(v)
					if err != nil {
						return nil, err
					}
					out := []any{}
					for _, p := range strings.Split(s, sep) {
						if p = strings.TrimSpace(p); p != "" {
							out = append(out, p)
						}
					}
					return out, nil
				}, nil
			}},
		"join": {Usage: `join(";")`, Doc: "joins an array into text (Salesforce multi-select picklists use \";\")", args: []argKind{argString}, whole: true,
			build: func(a []any) (func(any) (any, error), error) {
				sep := a[0].(string)
				return func(v any) (any, error) {
					arr, ok := v.([]any)
					if !ok {
						return toText(v)
					}
					parts := make([]string, 0, len(arr))
					for _, e := range arr {
						if e == nil {
							continue
						}
						s, err := toText(e)
						if err != nil {
							return nil, err
						}
						parts = append(parts, s)
					}
					return strings.Join(parts, sep), nil
				}, nil
			}},
		"first": {Usage: "first", Doc: "the first element of an array (null when empty)", whole: true,
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					if arr, ok := v.([]any); ok {
						if len(arr) == 0 {
							return nil, nil
						}
						return arr[0], nil
					}
					return v, nil
				}, nil
			}},
		"last": {Usage: "last", Doc: "the last element of an array (null when empty)", whole: true,
			build: func([]any) (func(any) (any, error), error) {
				return func(v any) (any, error) {
					if arr, ok := v.([]any); ok {
						if len(arr) == 0 {
							return nil, nil
						}
						return arr[len(arr)-1], nil
					}
					return v, nil
				}, nil
			}},
	}
}

func fixed(f func(*recordMem, string) string) func([]any) (textFn, error) {
	return func([]any) (textFn, error) {
		return func(m *recordMem, s string) (string, error) { return f(m, s), nil }, nil
	}
}

// textTimeFormatter is timeFormatter for text input.
func textTimeFormatter(layout string, zoneArg int) func([]any) (textFn, error) {
	return func(a []any) (textFn, error) {
		loc := time.UTC
		if zoneArg >= 0 && len(a) > zoneArg {
			var err error
			if loc, err = loadZone(a[zoneArg].(string)); err != nil {
				return nil, err
			}
		}
		return func(m *recordMem, s string) (string, error) {
			t, err := textTime(s, loc)
			if err != nil {
				return "", err
			}
			return formatReusing(m, t.In(loc), layout, s), nil
		}, nil
	}
}

// formatReusing is t.Format(layout), returned as a substring of s when s
// starts with it (a date already written as wanted, the date of an
// ISO-8601 instant in UTC): no allocation then.
func formatReusing(m *recordMem, t time.Time, layout, s string) string {
	var buf [64]byte
	var b []byte
	if layout == time.DateOnly {
		if y, m, d := t.Date(); y >= 0 && y <= 9999 {
			// What Format writes for a date, without parsing the layout.
			b = append(buf[:0], byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
				byte('0'+int(m)/10), byte('0'+int(m)%10), '-', byte('0'+d/10), byte('0'+d%10))
		}
	}
	if b == nil {
		b = t.AppendFormat(buf[:0], layout)
	}
	if s = strings.TrimSpace(s); len(s) >= len(b) && s[:len(b)] == string(b) {
		return s[:len(b)]
	}
	return m.copyText(b)
}

// digitsText keeps the digits of s (s itself when it has nothing else).
// Digits are ASCII, and no byte of a multi-byte UTF-8 sequence is one, so
// filtering bytes keeps what filtering runes keeps.
func digitsText(m *recordMem, s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == len(s) {
		return s
	}
	b := m.textBuf(len(s))
	start := len(b)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	if len(b) == start {
		return m.textDone(b) // "", and the buffer as it was
	}
	return m.textDone(b)
}

// lowerText is strings.ToLower, writing ASCII results to m.
func lowerText(m *recordMem, s string) string {
	return asciiCase(m, s, 'A', strings.ToLower)
}

// upperText is strings.ToUpper, writing ASCII results to m.
func upperText(m *recordMem, s string) string {
	return asciiCase(m, s, 'a', strings.ToUpper)
}

// asciiCase maps the 26 ASCII letters from `from` to the other case; it
// returns s itself when none is there (as strings.ToLower/ToUpper do), and
// leaves text that is not ASCII to general (the Unicode mapping).
func asciiCase(m *recordMem, s string, from byte, general func(string) string) string {
	first := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return general(s)
		}
		if first < 0 && c >= from && c <= from+25 {
			first = i
		}
	}
	if first < 0 {
		return s
	}
	b := m.textBuf(len(s))
	b = append(b, s[:first]...)
	for i := first; i < len(s); i++ {
		c := s[i]
		if c >= from && c <= from+25 {
			c ^= 'a' - 'A' // the case bit
		}
		b = append(b, c)
	}
	return m.textDone(b)
}

// TransformNames lists the built-in transforms, sorted.
func TransformNames() []string { return sortedKeys(transforms) }

// TransformUsage returns the usage and description of a built-in transform.
func TransformUsage(name string) (usage, doc string, ok bool) {
	d, ok := transforms[name]
	if !ok {
		return "", "", false
	}
	return d.Usage, d.Doc, true
}

func timeFormatter(layout string, zoneArg int) func([]any) (func(any) (any, error), error) {
	return func(a []any) (func(any) (any, error), error) {
		layout := namedLayout(layout)
		loc := time.UTC
		if zoneArg >= 0 && len(a) > zoneArg {
			var err error
			if loc, err = loadZone(a[zoneArg].(string)); err != nil {
				return nil, err
			}
		}
		return func(v any) (any, error) {
			t, err := toTime(v, loc)
			if err != nil {
				return nil, err
			}
			return t.In(loc).Format(layout), nil
		}, nil
	}
}

var namedLayouts = map[string]string{
	"rfc3339":      time.RFC3339,
	"rfc3339nano":  time.RFC3339Nano,
	"date":         time.DateOnly,
	"datetime":     "2006-01-02T15:04:05.000Z07:00",
	"rfc1123":      time.RFC1123,
	"kitchen":      time.Kitchen,
	"date_time":    time.DateTime,
	"iso8601_date": time.DateOnly,
}

func namedLayout(s string) string {
	if l, ok := namedLayouts[strings.ToLower(s)]; ok {
		return l
	}
	return s
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name like \"Europe/Paris\")", name)
	}
	return loc, nil
}

// compile a transform chain.
func (c *compiler) transforms(chain []string, pos Pos, path string) []*transformStep {
	var out []*transformStep
	for _, t := range chain {
		name, args, err := parseCall(t)
		if err != nil {
			c.add(pos, path, "transform `"+t+"`: "+err.Error(), "write a name like `lower` or a call like `truncate(40)`")
			continue
		}
		def, ok := transforms[name]
		if !ok {
			hint := didYouMean(name, TransformNames())
			if hint == "" {
				hint = "built-in transforms: " + quoteList(TransformNames(), 40)
			}
			c.add(pos, path, "unknown transform `"+name+"`", hint)
			continue
		}
		if len(args) > len(def.args) || len(args) < len(def.args)-def.optional {
			c.add(pos, path, fmt.Sprintf("transform `%s` takes %s, got %d", name, argCount(def), len(args)), "usage: `"+def.Usage+"`")
			continue
		}
		bad := false
		for i, a := range args {
			switch def.args[i] {
			case argInt:
				if _, ok := a.(int); !ok {
					c.add(pos, path, fmt.Sprintf("transform `%s`: argument %d must be a whole number, got %v", name, i+1, describeValue(a)), "usage: `"+def.Usage+"`")
					bad = true
				}
			case argString:
				switch x := a.(type) {
				case int:
					args[i] = strconv.Itoa(x)
				case float64:
					args[i] = strconv.FormatFloat(x, 'f', -1, 64)
				}
			}
		}
		if bad {
			continue
		}
		var fn func(any) (any, error)
		var sfn textFn
		if def.text != nil {
			sfn, err = def.text(args)
		}
		if err == nil && def.build != nil {
			fn, err = def.build(args)
		} else if err == nil {
			fn = func(v any) (any, error) {
				s, err := toText(v)
				if err != nil {
					return nil, err
				}
				return sfn(nil, s)
			}
		}
		if err != nil {
			c.add(pos, path, "transform `"+t+"`: "+err.Error(), "usage: `"+def.Usage+"`")
			continue
		}
		kind := transformOut[name]
		if kind == "" {
			kind = "string"
		}
		step := &transformStep{name: name, fn: fn, sfn: sfn, whole: def.whole, out: kind, sig: name + fmt.Sprintf("%#v", args)}
		if name == "join" {
			step.sep = args[0].(string)
		}
		out = append(out, step)
	}
	return out
}

func argCount(d *transformDef) string {
	lo, hi := len(d.args)-d.optional, len(d.args)
	word := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return strconv.Itoa(n) + " arguments"
	}
	switch {
	case hi == 0:
		return "no arguments"
	case lo == hi:
		return word(hi)
	}
	return fmt.Sprintf("%d to %s", lo, word(hi))
}

// runTransforms applies a chain; a transform that does not take arrays as a
// whole runs on each element of an array. New text goes to m.
func runTransforms(m *recordMem, steps []*transformStep, v any) (any, error) {
	for i := 0; i < len(steps); i++ {
		t := steps[i]
		if s, ok := v.(string); ok && t.sfn != nil {
			out, n, err := runText(m, steps[i:], s)
			if err != nil {
				return nil, err
			}
			v, i = out, i+n-1
			continue
		}
		if v == nil {
			return nil, nil
		}
		var err error
		if arr, ok := v.([]any); ok && !t.whole {
			out := make([]any, len(arr))
			for i, e := range arr {
				if e == nil {
					continue
				}
				if out[i], err = t.fn(e); err != nil {
					return nil, fmt.Errorf("transform %s, element %d: %w", t.name, i, err)
				}
			}
			v = out
			continue
		}
		if v, err = t.fn(v); err != nil {
			return nil, fmt.Errorf("transform %s: %w", t.name, err)
		}
	}
	return v, nil
}

// runText runs the leading text transforms of steps on s; n is how many
// ran. New text goes to m.
func runText(m *recordMem, steps []*transformStep, s string) (string, int, error) {
	n := 0
	for ; n < len(steps) && steps[n].sfn != nil; n++ {
		var err error
		if s, err = steps[n].sfn(m, s); err != nil {
			return "", n, fmt.Errorf("transform %s: %w", steps[n].name, err)
		}
	}
	return s, n, nil
}

// joinText is `join(sep)` on an array of text (nulls are skipped) read
// from the data, without boxing the elements, written to m; ok is false for
// arrays with other elements (the generic path handles them).
func joinText(m *recordMem, r gjson.Result, sep string) (string, bool) {
	var buf [16]string
	parts := buf[:0]
	ok := true
	r.ForEach(func(_, e gjson.Result) bool {
		switch e.Type {
		case gjson.String:
			parts = append(parts, e.Str)
		case gjson.Null:
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return "", false
	}
	switch len(parts) {
	case 0:
		return "", true
	case 1:
		return parts[0], true
	}
	n := len(sep) * (len(parts) - 1)
	for _, p := range parts {
		n += len(p)
	}
	b := m.textBuf(n)
	b = append(b, parts[0]...)
	for _, p := range parts[1:] {
		b = append(b, sep...)
		b = append(b, p...)
	}
	return m.textDone(b), true
}

// splitChain splits "trim | lower | truncate(40)" on the pipes outside
// quotes and parentheses.
func splitChain(s string) []string {
	var out []string
	depth, quote, start := 0, byte(0), 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case ch == '|' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if last := strings.TrimSpace(s[start:]); last != "" || len(out) > 0 {
		out = append(out, last)
	}
	return out
}

// parseCall parses `name` or `name(arg, ...)`; args are whole numbers (int),
// quoted strings, or bare words (strings).
func parseCall(s string) (string, []any, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open < 0 {
		if !isName(s) {
			return "", nil, errors.New("not a transform name")
		}
		return s, nil, nil
	}
	name := strings.TrimSpace(s[:open])
	if !isName(name) {
		return "", nil, errors.New("not a transform name")
	}
	if !strings.HasSuffix(s, ")") {
		return "", nil, errors.New("missing `)`")
	}
	inner := s[open+1 : len(s)-1]
	var args []any
	if strings.TrimSpace(inner) == "" {
		return name, args, nil
	}
	var cur strings.Builder
	quote, quoted, qtext := byte(0), false, ""
	flush := func() error {
		if quoted {
			args = append(args, qtext)
			quoted, qtext = false, ""
			cur.Reset()
			return nil
		}
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return errors.New("empty argument")
		}
		if i, err := strconv.Atoi(text); err == nil {
			args = append(args, i)
		} else if f, err := strconv.ParseFloat(text, 64); err == nil {
			args = append(args, f)
		} else {
			args = append(args, text)
		}
		return nil
	}
	for i := 0; i < len(inner); i++ {
		ch := inner[i]
		switch {
		case quote != 0:
			if ch == '\\' && i+1 < len(inner) {
				i++
				cur.WriteByte(inner[i])
			} else if ch == quote {
				quote = 0
				qtext = cur.String()
				cur.Reset()
			} else {
				cur.WriteByte(ch)
			}
		case ch == '"' || ch == '\'':
			if strings.TrimSpace(cur.String()) != "" {
				return "", nil, errors.New("stray quote in argument")
			}
			cur.Reset()
			quote, quoted = ch, true
		case ch == ',':
			if err := flush(); err != nil {
				return "", nil, err
			}
		default:
			if quoted && ch != ' ' && ch != '\t' {
				return "", nil, errors.New("text after a quoted argument")
			}
			cur.WriteByte(ch)
		}
	}
	if quote != 0 {
		return "", nil, errors.New("unterminated quote")
	}
	if err := flush(); err != nil {
		return "", nil, err
	}
	return name, args, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// ---- value helpers shared by transforms and expression functions ----

// toText renders a scalar as text.
func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case nil:
		return "", errors.New("value is null")
	}
	return "", fmt.Errorf("expected text, got %s", describeValue(v))
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("expected a number, got %s", describeValue(v))
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case int:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "y", "1", "on":
			return true, nil
		case "false", "no", "n", "0", "off", "":
			return false, nil
		}
		return false, fmt.Errorf("%q is not a boolean", x)
	}
	return false, fmt.Errorf("expected a boolean, got %s", describeValue(v))
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700", // Salesforce: 2024-01-02T03:04:05.000+0000
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	time.DateOnly,
}

// toTime reads a time from a time.Time, ISO-8601 text (an instant, a local
// date-time read in loc, or a date), or Unix seconds (milliseconds when the
// number is larger than 1e11).
func toTime(v any, loc *time.Location) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		return textTime(x, loc)
	case int64:
		return unixTime(float64(x)), nil
	case int:
		return unixTime(float64(x)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return time.Time{}, fmt.Errorf("%v is not a time", x)
		}
		return unixTime(x), nil
	}
	return time.Time{}, fmt.Errorf("expected a time, got %s", describeValue(v))
}

// textTime is toTime for text.
func textTime(x string, loc *time.Location) (time.Time, error) {
	s := strings.TrimSpace(x)
	// Fast paths by shape, so the common forms parse on the first try.
	if len(s) == 10 {
		if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
			return t, nil
		}
	} else if n := len(s); n > 19 && (s[n-1] == 'Z' || s[n-3] == ':') {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (expected ISO-8601, like 2024-05-01T10:00:00Z or 2024-05-01)", x)
}

func unixTime(f float64) time.Time {
	if math.Abs(f) > 1e11 {
		return time.UnixMilli(int64(f)).UTC()
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// titleText upper-cases the first letter of each word (after a space or a
// hyphen) and lower-cases the others, writing to m.
func titleText(m *recordMem, s string) string {
	b := m.textBuf(len(s))
	start := true
	for _, r := range s {
		if unicode.IsSpace(r) || r == '-' {
			start = true
			b = utf8.AppendRune(b, r)
			continue
		}
		if start {
			b = utf8.AppendRune(b, unicode.ToUpper(r))
			start = false
		} else {
			b = utf8.AppendRune(b, unicode.ToLower(r))
		}
	}
	return m.textDone(b)
}

func sha256Hex(s string) string { return sha256Text(nil, s) }

// sha256Text is the hex SHA-256 of s, written to m.
func sha256Text(m *recordMem, s string) string {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s))) // read only
	b := m.textBuf(2 * sha256.Size)
	return m.textDone(hex.AppendEncode(b, sum[:]))
}

func roundTo(f float64, n int) float64 {
	p := math.Pow10(n)
	r := math.Round(f*p) / p
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return f
	}
	return r
}

func formatNumber(f float64, decimals int, sep string) string {
	s := strconv.FormatFloat(roundTo(f, decimals), 'f', decimals, 64)
	if sep == "" {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	b.WriteString(frac)
	return b.String()
}

// callingCodes maps ISO 3166 regions to their E.164 calling codes.
var callingCodes = map[string]string{
	"US": "1", "CA": "1", "GB": "44", "UK": "44", "IE": "353", "FR": "33", "DE": "49", "ES": "34", "IT": "39",
	"PT": "351", "NL": "31", "BE": "32", "LU": "352", "CH": "41", "AT": "43", "SE": "46", "NO": "47", "DK": "45",
	"FI": "358", "PL": "48", "CZ": "420", "GR": "30", "AU": "61", "NZ": "64", "JP": "81", "KR": "82", "CN": "86",
	"HK": "852", "SG": "65", "IN": "91", "BR": "55", "MX": "52", "AR": "54", "ZA": "27", "AE": "971", "IL": "972",
	"TR": "90",
}

func callingCode(region string) (string, error) {
	r := strings.TrimPrefix(strings.TrimSpace(region), "+")
	if r != "" && strings.Trim(r, "0123456789") == "" {
		if len(r) > 3 {
			return "", fmt.Errorf("calling code %q is longer than 3 digits", region)
		}
		return r, nil
	}
	cc, ok := callingCodes[strings.ToUpper(r)]
	if !ok {
		return "", fmt.Errorf("unknown region %q (use an ISO code like \"US\", \"FR\", or a calling code like \"+44\"); known: %s", region, strings.Join(sortedKeys(callingCodes), ", "))
	}
	return cc, nil
}

// toE164 normalises a phone number: "+", then 8 to 15 digits. Numbers
// without "+" or "00" get the region's calling code (a national trunk 0 is
// dropped, and a leading 1 for NANP numbers is kept as the code).
func toE164(m *recordMem, s, region string) (string, error) {
	t := strings.TrimSpace(s)
	intl := false
	switch {
	case strings.HasPrefix(t, "+"):
		intl, t = true, t[1:]
	case strings.HasPrefix(t, "00"):
		intl, t = true, t[2:]
	}
	// The digits go after room for "+" and a calling code, so the result
	// is built in one buffer and allocated once.
	const room = 5
	var buf [48]byte
	d := buf[:room]
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			d = append(d, byte(r))
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\u00a0':
		default:
			if r == 'x' || r == 'X' || r == '#' || r == ';' || r == ',' {
				// extension: stop
				goto done
			}
			if !utf8.ValidRune(r) || unicode.IsLetter(r) {
				return "", fmt.Errorf("%q is not a phone number", s)
			}
		}
	}
done:
	digits := d[room:]
	start := room // where the digits with their calling code begin in d
	if !intl {
		if region == "" {
			return "", fmt.Errorf("%q has no country code; use e164(\"REGION\") to give a default", s)
		}
		cc, _ := callingCode(region)
		switch {
		case cc == "1" && len(digits) == 11 && digits[0] == '1':
			// already prefixed with the NANP code
		default:
			if cc != "1" && len(digits) > 0 && digits[0] == '0' {
				d = append(d[:room], d[room+1:]...)
			}
			start = room - len(cc)
			copy(d[start:], cc)
		}
	}
	digits = d[start:]
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", fmt.Errorf("%q is not a valid international phone number", s)
	}
	d[start-1] = '+'
	return m.copyText(d[start-1:]), nil
}
