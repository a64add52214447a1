package mappings

import (
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
		for i, p := range e.paths {
			want := gjson.Get(doc, p)
			got := out[i]
			if want.Exists() != got.Exists() || want.Type != got.Type || want.Raw != got.Raw || want.Str != got.Str {
				t.Fatalf("path %q in %s:\n got %v %q %q\nwant %v %q %q", p, doc, got.Type, got.Raw, got.Str, want.Type, want.Raw, want.Str)
			}
		}
	})
}
