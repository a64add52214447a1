package mappings_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/mappings"
)

// FuzzCompileApply compiles arbitrary mappings and applies the ones that
// compile to arbitrary data: nothing may panic, and every result must encode
// as JSON.
func FuzzCompileApply(f *testing.F) {
	member, err := os.ReadFile("testdata/member-to-lpm.yaml")
	if err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile("testdata/member.json")
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(member),
		"fields: {A: a, B: {from: b.c, default: 1}, C: {value: [1, {x: y}]}}",
		"when: 'a > 1'\nfields: {A: {expr: 'a * 2 + len(b ?? [])'}}",
		"fields: {A: {from: s, map: {x: X, 1: One}, fallback: null}, B: {from: s, transform: [trim, lower, sha256]}}",
		"fields: {L: {each: items, fields: {S: sku, Q: {expr: 'qty * price'}, R: $root.id}}}",
		"fields: {T: {each: tags, transform: [upper, 'truncate(2)']}, P: {from: p, transform: ['e164(\"FR\")']}}",
		"fields: {D: {from: d, transform: [date]}, E: {expr: 'formatTime(toTime(d), \"2006\", \"Europe/Paris\")'}}",
		"fields: {M: {from: m, lookup: {system: s, object: o, missing: null}}, N: {from: m, lookup: {external_id: X}}}",
		"source:\n  fields: {n: integer, t: time, s: string}\nfields: {A: {expr: 'n + 1'}, B: {expr: 't.Year()'}, C: {expr: 's + \"x\"'}}",
		"fields: {A: {from: 'items.#(qty>1)#.sku'}, B: {from: 'tags|@reverse'}, C: {expr: '$this[\"odd key\"]'}}",
	}
	datas := []string{string(data), `{}`, `{"a":2,"b":[1],"s":"x","items":[{"sku":"a","qty":2,"price":1.5}],"tags":["ab",null,3],"d":"2024-01-02","m":"k","p":"06 12"}`,
		`{"n":"1.5","t":"never","s":{"x":1}}`, `[1,2`, `{"a":{"a":{"a":{}}}}`, `{"items":"no","tags":{}}`, ``}
	for i, s := range seeds {
		f.Add(s, datas[i%len(datas)])
	}
	xref := fuzzResolver{}
	f.Fuzz(func(t *testing.T, src, data string) {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			return
		}
		spec, err := mappings.ParseNode("testdata/fuzz.yaml", &n) // sample_file resolves to testdata/
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty parse error")
			}
			return
		}
		m, err := mappings.Compile(spec, mappings.WithResolver(xref))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty compile error")
			}
			return
		}
		_ = m.CheckSchema(mappings.TargetSchema{Object: "X", Fields: []mappings.TargetField{{Name: "A", Type: "double", Createable: true, Updateable: true, Required: true}, {Name: "B", Type: "picklist", Picklist: []string{"x"}}}})
		out, err := m.Apply(context.Background(), mappings.Input{ID: "e", Subject: "s", Data: []byte(data)})
		if err != nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("result does not encode as JSON: %v (%#v)", err, out)
		}
	})
}

type fuzzResolver struct{}

func (fuzzResolver) Resolve(_ context.Context, _, _, key string) (string, bool, error) {
	return "id-" + key, len(key)%2 == 0, nil
}
