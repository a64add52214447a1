package mappings

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unsafe"

	"github.com/tidwall/gjson"
)

// pointsInto reports whether s's bytes lie in buf.
func pointsInto(s string, buf []byte) bool {
	if len(s) == 0 || len(buf) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= base && p < base+uintptr(cap(buf))
}

// aliases returns the path of the first text in v (keys included) that
// points into buf, or "".
func aliases(v any, buf []byte, path string) string {
	switch x := v.(type) {
	case string:
		if pointsInto(x, buf) {
			return path
		}
	case []any:
		for i, e := range x {
			if p := aliases(e, buf, path+"["+string(rune('0'+i%10))+"]"); p != "" {
				return p
			}
		}
	case map[string]any:
		for k, e := range x {
			if pointsInto(k, buf) {
				return path + " (key " + k + ")"
			}
			if p := aliases(e, buf, path+"."+k); p != "" {
				return p
			}
		}
	}
	return ""
}

// keepingResolver remembers the keys it is given.
type keepingResolver struct{ keys *[]string }

func (r keepingResolver) Resolve(_ context.Context, _, _, key string) (string, bool, error) {
	*r.keys = append(*r.keys, key)
	return "id-" + key, true, nil
}

// The data is read in place: nothing of the result, of an error or of what a
// resolver is given may point into the caller's buffer, on every path (fast
// and generic, natively evaluated expressions and the VM, nested objects,
// arrays, composites, lookups). Overwriting the buffer afterwards changes
// nothing.
func TestResultNeverPointsIntoData(t *testing.T) {
	ctx := context.Background()
	fields := []string{
		"A: id\n  B: {from: email, transform: [trim]}\n  C: {from: email, transform: [trim, lower]}\n  D: {from: day, transform: [date]}",
		"E: {from: tags, transform: ['join(\";\")']}\n  F: {from: one, transform: ['join(\";\")']}\n  G: tags\n  H: address\n  I: {from: tags, transform: [first]}",
		"J: {expr: 'first_name[1:]'}\n  K: {expr: 'first_name + last_name'}\n  L: {expr: 'tags'}\n  M: {expr: 'address'}\n  N: {expr: 'trim(email)'}",
		"O: {expr: 'map(tags, # + \"\")'}\n  P: {expr: 'address.city ?? \"x\"'}\n  Q: {expr: 'sprintf(\"%s\", id)'}\n  R: {expr: 'coalesce(nope, id)'}",
		"S: {from: id, lookup: {external_id: Ext__c}}\n  T: {from: id, lookup: {system: s, object: o}}\n  U: {from: email, transform: [trim], lookup: {external_id: X}}",
		"V: {fields: {W: id, X: {from: address.city, transform: [upper]}}}\n  Y: {each: items, fields: {Z: sku, Q: {expr: 'sku + \"\"'}, R: $root.id}}\n  AA: {each: items, from: sku}\n  AB: {each: tags}",
		"AC: {from: status, map: {active: Active}, fallback: Custom}\n  AD: {from: id, transform: [empty_to_null]}\n  AE: {from: email, transform: [trim, 'truncate(3)']}",
		"AF: {from: 'items.#.sku'}\n  AG: {from: 'address|@keys'}\n  AH: {expr: '$this[\"odd key\"]'}\n  AI: {from: 'odd key'}",
	}
	const data = `{"id":"M-1","email":"  ann@example.com ","day":"2024-05-01T10:00:00Z","tags":["wine","travel"],"one":["solo"],
		"address":{"city":"Paris","zip":"75001","a\u00e9":"x"},"first_name":"ann","last_name":"lee","status":"active",
		"items":[{"sku":"A-1"},{"sku":"B-2"}],"odd key":"odd"}`
	for _, f := range fields {
		var keys []string
		m := mustCompileInternal(t, "fields:\n  "+f+"\n")
		m.resolver = keepingResolver{keys: &keys}
		buf := []byte(data)
		got, err := m.Apply(ctx, Input{ID: "ev-1", Data: buf})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if p := aliases(got, buf, "result"); p != "" {
			t.Errorf("%s: %s points into the data", f, p)
		}
		for _, k := range keys {
			if pointsInto(k, buf) {
				t.Errorf("%s: the resolver's key %q points into the data", f, k)
			}
		}
		want, err := m.Apply(ctx, Input{ID: "ev-1", Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = '#'
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the result changed with the data:\n%#v\n%#v", f, got, want)
		}
	}

	// Errors format what they show.
	m := mustCompileInternal(t, "fields:\n  A: {from: d, transform: [date]}\n  B: {from: n, transform: [number]}\n")
	for _, data := range []string{`{"d":"not a date"}`, `{"n":"nan-ish"}`, `{"d":"2024-01-01","n":{"x":1}}`} {
		buf := []byte(data)
		_, err := m.Apply(ctx, Input{Data: buf})
		if err == nil {
			t.Fatalf("%s: no error", data)
		}
		msg := err.Error()
		for i := range buf {
			buf[i] = '#'
		}
		if err.Error() != msg {
			t.Errorf("%s: the error changed with the data: %q, then %q", data, msg, err.Error())
		}
	}
}

func TestRecordMemKeep(t *testing.T) {
	doc := `{"a":"hello","b":"world"}`
	var r recordMem
	r.start(doc)
	in := doc[6:11] // hello
	out := r.keep(in)
	if out != "hello" || r.inDoc(out) {
		t.Fatalf("keep(%q) = %q, in doc: %v", in, out, r.inDoc(out))
	}
	other := strings.Repeat("x", 3)
	if got := r.keep(other); unsafe.StringData(got) != unsafe.StringData(other) {
		t.Errorf("keep copied text that is not in the data")
	}
	if r.keep("") != "" || r.inDoc(doc[3:3]) {
		t.Errorf("empty text")
	}
	// Boxed values are the values, text copied out of the data.
	vals := []any{r.str(doc[18:23]), r.str(""), r.str("x"), r.float(2.5), r.int(-7), r.float(0), r.int(1 << 40)}
	want := []any{"world", "", "x", 2.5, int64(-7), 0.0, int64(1 << 40)}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("boxed %#v, want %#v", vals, want)
	}
	for i := 0; i < 100; i++ { // past the first chunks
		if v := r.int(int64(i)); v != any(int64(i)) {
			t.Fatalf("int(%d) = %#v", i, v)
		}
		if v := r.str(doc[18+i%5 : 23]); v != any(doc[18+i%5:23]) {
			t.Fatalf("str = %#v", v)
		}
	}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("boxed values changed: %#v", vals)
	}
	// The next record sizes its chunk from this one; the old ones stay.
	r.finish()
	if r.textHint == 0 || r.doc != "" || r.text != nil {
		t.Errorf("after finish: %+v", r)
	}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("boxed values changed after finish: %#v", vals)
	}
}

func TestRecordMemDetach(t *testing.T) {
	doc := `{"k":"v","w":"x"}`
	var r recordMem
	r.start(doc)
	k, v := doc[2:3], doc[6:7]
	cases := []any{
		nil, true, int64(1), 2.5, "free", v,
		[]any{v, nil, []any{v, "free"}, map[string]any{"a": v}},
		map[string]any{k: v, "free": []any{v}},
		map[string]any{"free": map[string]any{k: nil}},
	}
	for _, c := range cases {
		want := deepCopy(c)
		got := r.detach(c)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("detach(%#v) = %#v", want, got)
		}
		if p := aliases(got, unsafe.Slice(unsafe.StringData(doc), len(doc)), "v"); p != "" {
			t.Errorf("detach(%#v): %s still in the data", want, p)
		}
	}
	// Nothing to copy: the same value back.
	m := map[string]any{"a": "b"}
	if got := r.detach(m); reflect.ValueOf(got).Pointer() != reflect.ValueOf(m).Pointer() {
		t.Errorf("detach rebuilt a map that needed nothing")
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.Clone(k)] = deepCopy(e)
		}
		return out
	case string:
		return strings.Clone(x)
	}
	return v
}

func TestRecordMemTextBuf(t *testing.T) {
	var r recordMem
	r.start("")
	a := r.textDone(append(r.textBuf(3), "abc"...))
	// More than the room asked for: append moves to a new array.
	b := r.textBuf(1)
	b = append(b, strings.Repeat("y", 500)...)
	long := r.textDone(b)
	c := r.textDone(append(r.textBuf(2), "de"...))
	empty := r.textDone(r.textBuf(4))
	if a != "abc" || long != strings.Repeat("y", 500) || c != "de" || empty != "" {
		t.Errorf("got %q, %q, %q, %q", a, long[:3], c, empty)
	}
	if r.textUsed != 505 {
		t.Errorf("used %d", r.textUsed)
	}
	r.finish()
	if r.textHint != 505 {
		t.Errorf("hint %d", r.textHint)
	}
	// An outsized record does not size the next one's chunks past the cap.
	r.start("")
	big := r.textDone(append(r.textBuf(1), strings.Repeat("z", 3*maxTextChunk)...))
	r.finish()
	if len(big) != 3*maxTextChunk || r.textHint != maxTextChunk {
		t.Errorf("after %d bytes: hint %d", len(big), r.textHint)
	}
	// Outside a record.
	var none *recordMem
	if s := none.copyText([]byte("xyz")); s != "xyz" {
		t.Errorf("nil copyText = %q", s)
	}
	if s := none.textDone(none.textBuf(0)); s != "" {
		t.Errorf("nil empty = %q", s)
	}
}

// The text transforms that write to the record's memory give what the
// standard library gives.
func TestTextTransformsInMemory(t *testing.T) {
	inputs := []string{"", "abc", "ABC", "Ann.Lee@Example.COM", "  mIxEd  ", "élan VITAL", "İstanbul", "ǅungla", "a\xffb", "x-y z\tw",
		"06 12 34 56 78", "١٢٣ 45", "0", "no digits", "ß", strings.Repeat("Ab", 100)}
	var r recordMem
	r.start("")
	for _, in := range inputs {
		if got, want := lowerText(&r, in), strings.ToLower(in); got != want {
			t.Errorf("lower(%q) = %q, want %q", in, got, want)
		}
		if got, want := upperText(&r, in), strings.ToUpper(in); got != want {
			t.Errorf("upper(%q) = %q, want %q", in, got, want)
		}
		if got, want := lowerText(nil, in), strings.ToLower(in); got != want {
			t.Errorf("nil lower(%q) = %q, want %q", in, got, want)
		}
		if got, want := titleText(&r, in), oldTitle(in); got != want {
			t.Errorf("title(%q) = %q, want %q", in, got, want)
		}
		if got, want := digitsText(&r, in), strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, in); got != want {
			t.Errorf("digits(%q) = %q, want %q", in, got, want)
		}
		sum := sha256.Sum256([]byte(in))
		if got, want := sha256Text(&r, in), hex.EncodeToString(sum[:]); got != want || sha256Hex(in) != want {
			t.Errorf("sha256(%q) = %q, want %q", in, got, want)
		}
	}
	// Unchanged text is not copied.
	s := "abc"
	if got := lowerText(&r, s); unsafe.StringData(got) != unsafe.StringData(s) {
		t.Errorf("lower copied text already lower-case")
	}
	if got := digitsText(&r, "123"); got != "123" {
		t.Errorf("digits = %q", got)
	}
}

// oldTitle is the title transform as strings.Builder wrote it.
func oldTitle(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		if unicode.IsSpace(r) || r == '-' {
			start = true
			b.WriteRune(r)
			continue
		}
		if start {
			b.WriteRune(unicode.ToUpper(r))
			start = false
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func TestJoinText(t *testing.T) {
	cases := []struct {
		arr  string
		want string
		ok   bool
	}{
		{`[]`, "", true},
		{`[null]`, "", true},
		{`["a"]`, "a", true},
		{`["a","b","c"]`, "a;b;c", true},
		{`["a",null,"b"]`, "a;b", true},
		{`["",""]`, ";", true},
		{`["a\u00e9","b"]`, "aé;b", true},
		{`["a",1]`, "", false},
		{`[{"x":1}]`, "", false},
		{`[["a"]]`, "", false},
		{`[true]`, "", false},
	}
	var r recordMem
	r.start("")
	for _, c := range cases {
		got, ok := joinText(&r, gjson.Parse(c.arr), ";")
		if got != c.want || ok != c.ok {
			t.Errorf("joinText(%s) = %q, %v; want %q, %v", c.arr, got, ok, c.want, c.ok)
		}
	}
}
