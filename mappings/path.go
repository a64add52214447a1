package mappings

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// extractor reads every source path a scope needs from one JSON document in
// a single pass: plain dotted paths go into a trie walked once over the
// document; paths with gjson syntax (wildcards, #, modifiers, queries,
// escapes) fall back to gjson.Get each.
type extractor struct {
	paths   []string       // slot → gjson path
	index   map[string]int // gjson path → slot
	root    *trieNode
	nsimple int   // slots in the trie
	complex []int // slots resolved with gjson.Get
}

type trieNode struct {
	kids  map[string]*trieNode
	first [256]bool   // first bytes of the kids' keys: most keys are rejected without hashing
	idx   []*trieNode // kids whose key is a small array index, by index
	slots []int
}

// maxIdx bounds the array indexes kept in trieNode.idx.
const maxIdx = 1024

func newExtractor() *extractor {
	return &extractor{index: map[string]int{}, root: &trieNode{}}
}

// add registers path and returns its slot.
func (e *extractor) add(path string) int {
	if s, ok := e.index[path]; ok {
		return s
	}
	s := len(e.paths)
	e.paths = append(e.paths, path)
	e.index[path] = s
	if keys, ok := simplePath(path); ok {
		n := e.root
		for _, k := range keys {
			if n.kids == nil {
				n.kids = map[string]*trieNode{}
			}
			c := n.kids[k]
			if c == nil {
				c = &trieNode{}
				n.kids[k] = c
				n.first[k[0]] = true
				if isDigits(k) {
					i, _ := strconv.Atoi(k)
					for len(n.idx) <= i {
						n.idx = append(n.idx, nil)
					}
					n.idx[i] = c
				}
			}
			n = c
		}
		n.slots = append(n.slots, s)
		e.nsimple++
	} else {
		e.complex = append(e.complex, s)
	}
	return s
}

// simplePath splits a gjson path made of plain keys ("a.b.0.c"); ok is false
// for anything using gjson syntax.
func simplePath(p string) ([]string, bool) {
	if p == "" || strings.ContainsAny(p, `\*?#|@!`) || p[0] == '[' || p[0] == '{' {
		return nil, false
	}
	keys := strings.Split(p, ".")
	for _, k := range keys {
		if k == "" {
			return nil, false
		}
		if isDigits(k) {
			// gjson reads "007" as index 7 of an array; keep the trie to
			// canonical, small indexes and leave the rest to gjson.
			if i, err := strconv.Atoi(k); err != nil || i >= maxIdx || strconv.Itoa(i) != k {
				return nil, false
			}
		}
	}
	return keys, true
}

// extract fills out (len = number of slots) from doc. A slot left with an
// empty Raw means the path does not exist. out must be cleared before.
func (e *extractor) extract(doc string, out []gjson.Result) {
	if e.nsimple > 0 {
		w := walker{out: out, left: e.nsimple}
		i := skipWS(doc, 0)
		if i < len(doc) {
			w.value(doc, i, e.root)
		}
	}
	for _, s := range e.complex {
		out[s] = gjson.Get(doc, e.paths[s])
	}
}

// walker scans a JSON document once, descending only into the members the
// trie names and skipping the rest without parsing them. It never reads
// past the end of doc and always advances, so malformed input only leaves
// slots empty.
type walker struct {
	out  []gjson.Result
	left int
	done bool
}

// value scans the value starting at doc[i] (not a space) and returns the
// index just after it.
func (w *walker) value(doc string, i int, n *trieNode) int {
	switch doc[i] {
	case '{':
		if n != nil && len(n.kids) > 0 {
			return w.object(doc, i, n)
		}
		return skipNested(doc, i)
	case '[':
		if n != nil && len(n.idx) > 0 {
			return w.array(doc, i, n)
		}
		return skipNested(doc, i)
	case '"':
		return skipString(doc, i)
	}
	return skipScalar(doc, i)
}

func (w *walker) object(doc string, i int, n *trieNode) int {
	i++
	for !w.done {
		i = skipWS(doc, i)
		if i >= len(doc) {
			return i
		}
		switch doc[i] {
		case '}':
			return i + 1
		case ',':
			i++
			continue
		case '"':
		default:
			return len(doc) // malformed
		}
		ke := skipString(doc, i)
		key := doc[i+1 : max(ke-1, i+1)]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(doc[i:ke]).Str
		}
		i = skipWS(doc, ke)
		if i >= len(doc) || doc[i] != ':' {
			return len(doc)
		}
		if i = skipWS(doc, i+1); i >= len(doc) {
			return i
		}
		var child *trieNode
		if len(key) > 0 && n.first[key[0]] {
			child = n.kids[key]
		}
		vs := i
		i = w.value(doc, i, child)
		if child != nil && len(child.slots) > 0 {
			w.set(child, doc[vs:i])
		}
	}
	return len(doc)
}

func (w *walker) array(doc string, i int, n *trieNode) int {
	i++
	for idx := 0; !w.done; {
		i = skipWS(doc, i)
		if i >= len(doc) {
			return i
		}
		switch doc[i] {
		case ']':
			return i + 1
		case ',':
			i++
			continue
		case '}', ':':
			return len(doc) // malformed
		}
		var child *trieNode
		if idx < len(n.idx) {
			child = n.idx[idx]
		}
		vs := i
		i = w.value(doc, i, child)
		if child != nil && len(child.slots) > 0 {
			w.set(child, doc[vs:i])
		}
		idx++
	}
	return len(doc)
}

func (w *walker) set(n *trieNode, raw string) {
	var r gjson.Result
	parsed := false
	for _, s := range n.slots {
		if w.out[s].Raw != "" { // the first of duplicate keys wins, as in gjson.Get
			continue
		}
		if !parsed {
			r, parsed = parseRaw(raw), true
		}
		w.out[s] = r
		w.left--
	}
	if w.left <= 0 {
		w.done = true
	}
}

// parseRaw is gjson.Parse for one complete JSON value, with fast paths for
// the common text and literals.
func parseRaw(raw string) gjson.Result {
	switch raw[0] {
	case '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && strings.IndexByte(raw, '\\') < 0 {
			return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
		}
	case 't':
		if raw == "true" {
			return gjson.Result{Type: gjson.True, Raw: raw}
		}
	case 'f':
		if raw == "false" {
			return gjson.Result{Type: gjson.False, Raw: raw}
		}
	case 'n':
		if raw == "null" {
			return gjson.Result{Type: gjson.Null, Raw: raw}
		}
	}
	return gjson.Parse(raw)
}

func skipWS(doc string, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at doc[i] == '"'.
func skipString(doc string, i int) int {
	for i++; i < len(doc); {
		q := strings.IndexByte(doc[i:], '"')
		if q < 0 {
			return len(doc)
		}
		i += q
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		bs := 0
		for j := i - 1; j >= 0 && doc[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i + 1
		}
		i++
	}
	return len(doc)
}

// skipScalar returns the index after a number or literal (at least i+1).
func skipScalar(doc string, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case ',', '}', ']', ' ', '\n', '\r', '\t', ':':
			return i
		}
	}
	return len(doc)
}

// skipNested returns the index after the object or array at doc[i].
func skipNested(doc string, i int) int {
	depth := 0
	for ; i < len(doc); i++ {
		switch doc[i] {
		case '"':
			i = skipString(doc, i) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(doc)
}

// resultValue converts a gjson result to a JSON-compatible value; integer
// literals become int64 (exact), other numbers float64.
func resultValue(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return numberValue(r)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		if r.IsArray() {
			out := make([]any, 0, 4)
			r.ForEach(func(_, v gjson.Result) bool {
				out = append(out, resultValue(v))
				return true
			})
			return out
		}
		out := make(map[string]any)
		r.ForEach(func(k, v gjson.Result) bool {
			if _, dup := out[k.Str]; !dup {
				out[k.Str] = resultValue(v)
			}
			return true
		})
		return out
	}
	return nil
}

func numberValue(r gjson.Result) any {
	raw := r.Raw
	if isIntLiteral(raw) {
		if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return i
		}
	}
	return r.Num
}

func isIntLiteral(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// exists reports whether a slot was found.
func exists(r gjson.Result) bool { return r.Raw != "" }
