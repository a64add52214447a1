package mappings

import (
	"math"
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
	key   string               // this node's key in its parent
	kids  map[string]*trieNode // by key
	tab   []uint8              // by keyHash: 1 + index in group of the kids with that hash; 0: none
	group [][]*trieNode
	idx   []*trieNode // kids whose key is a small array index, by index
	slots []int
}

// keyHash spreads keys over a trie node's tab by their first two bytes as
// written in the document (a one-byte key is followed by its quote).
func keyHash(a, b byte) int { return (int(a)*7 + int(b)) & (keyHashSize - 1) }

const keyHashSize = 64

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
				c = &trieNode{key: k}
				n.kids[k] = c
				if n.tab == nil {
					n.tab = make([]uint8, keyHashSize)
				}
				// A key holding a quote is always escaped in the
				// document: object finds it by its unescaped text.
				if !strings.Contains(k, `"`) {
					h := keyHash(k[0], '"')
					if len(k) > 1 {
						h = keyHash(k[0], k[1])
					}
					if n.tab[h] == 0 {
						n.group = append(n.group, nil)
						n.tab[h] = uint8(len(n.group))
					}
					g := n.tab[h]
					n.group[g-1] = append(n.group[g-1], c)
				}
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
	case '[':
		if n != nil && len(n.idx) > 0 {
			return w.array(doc, i, n)
		}
	}
	return skipValue(doc, i)
}

// skipValue returns the index after the value starting at doc[i].
func skipValue(doc string, i int) int {
	switch doc[i] {
	case '{', '[':
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
		// The key. A key the trie names is recognised in place: its text
		// then a quote (trie keys hold no backslash, so the quote is not
		// escaped). Other keys are skipped, and looked up only when
		// they hold escapes.
		var child *trieNode
		ks, ke := i+1, -1 // ke: the closing quote
		if ks+1 < len(doc) {
			if g := n.tab[keyHash(doc[ks], doc[ks+1])]; g != 0 {
				for _, c := range n.group[g-1] {
					if e := ks + len(c.key); e < len(doc) && doc[e] == '"' && doc[ks:e] == c.key {
						child, ke = c, e
						break
					}
				}
			}
		}
		if ke < 0 {
			e := skipString(doc, i)
			if e >= len(doc) {
				return len(doc)
			}
			ke = e - 1
			if key := doc[ks:ke]; strings.IndexByte(key, '\\') >= 0 {
				child = n.kids[gjson.Parse(doc[i:e]).Str]
			}
		}
		// `": "` and `":` are the common forms.
		if i = ke + 1; i >= len(doc) || doc[i] != ':' {
			if i = skipWS(doc, i); i >= len(doc) || doc[i] != ':' {
				return len(doc)
			}
		}
		if i++; i < len(doc) && doc[i] == ' ' {
			i++
		}
		if i = skipWS(doc, i); i >= len(doc) {
			return i
		}
		switch {
		case child == nil:
			i = skipValue(doc, i)
		case len(child.slots) == 0:
			i = w.value(doc, i, child)
		default:
			vs := i
			if doc[i] == '"' {
				i = skipString(doc, i)
			} else {
				i = w.value(doc, i, child)
			}
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
	first := -1
	for _, s := range n.slots {
		if w.out[s].Raw != "" { // the first of duplicate keys wins, as in gjson.Get
			continue
		}
		if first < 0 {
			parseRaw(raw, &w.out[s])
			first = s
		} else {
			w.out[s] = w.out[first]
		}
		w.left--
	}
	if w.left <= 0 {
		w.done = true
	}
}

// parseRaw is gjson.Parse for one complete JSON value, with fast paths for
// the common text, numbers and literals; r is zero.
func parseRaw(raw string, r *gjson.Result) {
	switch raw[0] {
	case '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && strings.IndexByte(raw, '\\') < 0 {
			r.Type, r.Raw, r.Str = gjson.String, raw, raw[1:len(raw)-1]
			return
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if f, ok := parseSimpleNumber(raw); ok {
			r.Type, r.Raw, r.Num = gjson.Number, raw, f
			return
		}
	case 't':
		if raw == "true" {
			r.Type, r.Raw = gjson.True, raw
			return
		}
	case 'f':
		if raw == "false" {
			r.Type, r.Raw = gjson.False, raw
			return
		}
	case 'n':
		if raw == "null" {
			r.Type, r.Raw = gjson.Null, raw
			return
		}
	}
	*r = gjson.Parse(raw)
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseSimpleNumber is strconv.ParseFloat for a number written with at
// most 15 digits and no exponent (-12, 12345.5): the digits make an exact
// float64 and so does the power of ten, so one division rounds as
// ParseFloat does. ok is false for anything else.
func parseSimpleNumber(raw string) (float64, bool) {
	i, neg := 0, false
	if raw[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || (dot && frac == 0) {
		return 0, false
	}
	f := float64(mant) / float64pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

func skipWS(doc string, i int) int {
	for ; i < len(doc); i++ {
		if c := doc[i]; c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
			break
		}
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
	if i, ok := intValue(&r); ok {
		return i
	}
	return r.Num
}

// intValue is the value of a number written as an integer that fits an
// int64; ok is false for other numbers (read as float64).
func intValue(r *gjson.Result) (int64, bool) {
	raw := r.Raw
	if len(raw) <= 15 && isIntLiteral(raw) && r.Num == math.Trunc(r.Num) {
		return int64(r.Num), true // exact: at most 15 digits
	}
	if isIntLiteral(raw) {
		if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return i, true
		}
	}
	return 0, false
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
