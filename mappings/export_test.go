package mappings

import "github.com/tidwall/gjson"

// NewPathReader gives the external benchmark the engine's one-pass
// extractor, so hand-written Go can read its input with the same scanner
// the engine uses: out[i] is paths[i] (Raw empty when missing).
func NewPathReader(paths ...string) func(doc string, out []gjson.Result) {
	e := newExtractor()
	for _, p := range paths {
		e.add(p)
	}
	return func(doc string, out []gjson.Result) {
		clear(out)
		e.extract(doc, out)
	}
}
