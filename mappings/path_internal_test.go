package mappings

import (
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzExtract checks the one-pass extractor against gjson.Get on the same
// paths: same existence, type and raw text, on any input.
func FuzzExtract(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":"x","d":[1,{"e":null}]},"a":2}`, "a,b.c,b.d.1.e,b.d.0,z,b")
	f.Add(`{"k\"q":"v","n":-1.5e3,"t":true,"s":"a\\"b","arr":[[1],[2]]}`, `n,t,s,arr.1.0,arr.0`)
	f.Add(`[{"a":1},{"a":2}]`, "0.a,1.a,2")
	f.Add(`{"a":{"b":{"c":{}}},"x":[] , "y" : { } }`, "a.b.c,x,y,a.b")
	f.Add(`{"a":`, "a")
	f.Add(`{"a" 1, "b": 2}`, "b")
	f.Add(`{"a":"v","a\":":1,"b":2}`, `a":,a,b`)
	f.Add(`{"n":[0,-0,1.5,-12345.25,01,1e3,123456789012345,1234567890123456,0.1000000000000001]}`, "n.0,n.1,n.2,n.3,n.4,n.5,n.6,n.7,n.8")
	f.Fuzz(func(t *testing.T, doc, paths string) {
		if !gjson.Valid(doc) {
			// Malformed input: only require no panic and no hang.
			e := newExtractor()
			for _, p := range strings.Split(paths, ",") {
				if p != "" {
					e.add(p)
				}
			}
			e.extract(doc, make([]gjson.Result, len(e.paths)))
			return
		}
		e := newExtractor()
		for _, p := range strings.Split(paths, ",") {
			if _, ok := simplePath(p); ok {
				e.add(p)
			}
		}
		out := make([]gjson.Result, len(e.paths))
		e.extract(doc, out)
		if r := gjson.Parse(doc); !r.IsObject() && !r.IsArray() {
			// A scalar document has no members. (gjson.Get reads into a
			// string's text there: `"[0"` has "0" = `0"`; mappings only
			// read objects and arrays.)
			for i, p := range e.paths {
				if out[i].Exists() {
					t.Fatalf("path %q in scalar %s: got %q", p, doc, out[i].Raw)
				}
			}
			return
		}
		for i, p := range e.paths {
			want := gjson.Get(doc, p)
			got := out[i]
			if want.Exists() != got.Exists() || want.Type != got.Type || want.Raw != got.Raw || want.Str != got.Str || want.Num != got.Num {
				t.Fatalf("path %q in %s:\n got %v %q %q\nwant %v %q %q", p, doc, got.Type, got.Raw, got.Str, want.Type, want.Raw, want.Str)
			}
		}
	})
}

// BenchmarkExtract reads the member mapping's paths from the member record.
func BenchmarkExtract(b *testing.B) {
	m := compileFile(b, "testdata/member-to-lpm.yaml")
	data, err := os.ReadFile("testdata/member.json")
	if err != nil {
		b.Fatal(err)
	}
	doc := string(data)
	out := make([]gjson.Result, len(m.root.ext.paths))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		clear(out)
		m.root.ext.extract(doc, out)
	}
}
