package openapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Redacted is what the read role sees in place of a redacted value.
const Redacted = "[redacted]"

// minRedactedInText is the shortest redacted value also hidden where it
// appears in free text (a dead letter's reason): shorter ones would hide
// unrelated words.
const minRedactedInText = 4

// redactor hides the values at some paths of an event's data.
type redactor struct {
	paths [][]string
}

func newRedactor(paths []string) redactor {
	var r redactor
	for _, p := range paths {
		if p == "" {
			continue
		}
		r.paths = append(r.paths, strings.Split(p, "."))
	}
	return r
}

// event returns a copy of the CloudEvent raw with every value at the
// redactor's paths inside its data replaced by Redacted, at every index of
// the arrays on the way, and the values replaced (as text), to hide them in
// free text too. ok is false when raw is not a JSON object.
func (r redactor) event(raw json.RawMessage) (out json.RawMessage, hidden []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers kept as written
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil || ev == nil {
		return nil, nil, false
	}
	if len(r.paths) == 0 {
		return raw, nil, true
	}
	if data, has := ev["data"]; has {
		for _, p := range r.paths {
			data = redactAt(data, p, &hidden)
		}
		ev["data"] = data
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, nil, false
	}
	return bytes.TrimRight(b.Bytes(), "\n"), hidden, true
}

// redactAt replaces what path names in v, descending into every element of
// the arrays it meets, and returns v.
func redactAt(v any, path []string, hidden *[]string) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = redactAt(x[i], path, hidden)
		}
		return x
	case map[string]any:
		if len(path) == 0 {
			return hide(x, hidden)
		}
		if child, has := x[path[0]]; has {
			x[path[0]] = redactAt(child, path[1:], hidden)
		}
		return x
	case nil:
		return nil // nothing to hide
	}
	if len(path) == 0 {
		return hide(v, hidden)
	}
	return v // the path goes on below a scalar: nothing there
}

// hide returns Redacted for v, remembering the text of the scalars in it.
func hide(v any, hidden *[]string) any {
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			*hidden = append(*hidden, x)
		case json.Number:
			*hidden = append(*hidden, x.String())
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return Redacted
}

// text hides the values in free text, longest first.
func redactText(s string, hidden []string) string {
	vals := slices.Clone(hidden)
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		if len(v) >= minRedactedInText {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}
