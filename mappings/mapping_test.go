package mappings_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/mappings"
)

// compile parses src as the mapping file "m.yaml" and compiles it.
func compile(t testing.TB, src string, opts ...mappings.Option) (*mappings.Mapping, error) {
	t.Helper()
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &n))
	spec, err := mappings.ParseNode("m.yaml", &n)
	if err != nil {
		return nil, err
	}
	return mappings.Compile(spec, opts...)
}

func mustCompile(t testing.TB, src string, opts ...mappings.Option) *mappings.Mapping {
	t.Helper()
	m, err := compile(t, src, opts...)
	require.NoError(t, err)
	return m
}

var evTime = time.Date(2024, 5, 1, 22, 30, 0, 0, time.UTC)

func input(data string) mappings.Input {
	return mappings.Input{ID: "ev-1", Type: "loyalty.member.upserted", Source: "ledger", Subject: "M1", Time: evTime, Data: []byte(data)}
}

type applyCase struct {
	name    string
	mapping string
	data    string
	want    map[string]any
	wantErr string // substring of the error; for record errors also checks the field
	field   string // the RecordError's Field, when wantErr is a record error
}

func runApply(t *testing.T, cases []applyCase, opts ...mappings.Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.mapping, opts...)
			got, err := m.Apply(context.Background(), input(tc.data))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				if tc.field != "" {
					var re *mappings.RecordError
					require.ErrorAs(t, err, &re)
					assert.Equal(t, tc.field, re.Field)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFrom(t *testing.T) {
	data := `{"email":"ann@example.com","n":42,"f":1.5,"big":9007199254740993,"ok":true,"no":false,"nil":null,
		"address":{"city":"Paris","zip":"75001","geo":{"lat":48.8}},"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}],
		"tags":["x","y"],"a.b":"dotted","dup":1,"dup":2,"esc":"caf\u00e9 \"q\"","empty":{},"arr":[]}`
	runApply(t, []applyCase{
		{name: "plain key", mapping: "fields: {E: {from: email}}", data: data, want: map[string]any{"E": "ann@example.com"}},
		{name: "shorthand", mapping: "fields: {E: email}", data: data, want: map[string]any{"E": "ann@example.com"}},
		{name: "integer is int64", mapping: "fields: {N: n}", data: data, want: map[string]any{"N": int64(42)}},
		{name: "fraction is float64", mapping: "fields: {F: f}", data: data, want: map[string]any{"F": 1.5}},
		{name: "big integer stays exact", mapping: "fields: {B: big}", data: data, want: map[string]any{"B": int64(9007199254740993)}},
		{name: "booleans", mapping: "fields: {A: ok, B: no}", data: data, want: map[string]any{"A": true, "B": false}},
		{name: "null is kept as null", mapping: "fields: {X: nil}", data: data, want: map[string]any{"X": nil}},
		{name: "missing is omitted", mapping: "fields: {X: nope, E: email}", data: data, want: map[string]any{"E": "ann@example.com"}},
		{name: "nested", mapping: "fields: {C: address.city, L: address.geo.lat}", data: data, want: map[string]any{"C": "Paris", "L": 48.8}},
		{name: "nested under missing parent", mapping: "fields: {C: nope.city}", data: data, want: map[string]any{}},
		{name: "nested under scalar", mapping: "fields: {C: email.city}", data: data, want: map[string]any{}},
		{name: "array index", mapping: "fields: {S: items.1.sku}", data: data, want: map[string]any{"S": "b"}},
		{name: "array index out of range", mapping: "fields: {S: items.5.sku}", data: data, want: map[string]any{}},
		{name: "gjson wildcard over array", mapping: "fields: {S: items.#.sku}", data: data, want: map[string]any{"S": []any{"a", "b"}}},
		{name: "gjson count", mapping: "fields: {S: items.#}", data: data, want: map[string]any{"S": int64(2)}},
		{name: "gjson query", mapping: `fields: {Q: 'items.#(sku=="b").qty'}`, data: data, want: map[string]any{"Q": int64(1)}},
		{name: "gjson modifier", mapping: "fields: {T: 'tags|@reverse'}", data: data, want: map[string]any{"T": []any{"y", "x"}}},
		{name: "escaped dot in key", mapping: `fields: {D: 'a\.b'}`, data: data, want: map[string]any{"D": "dotted"}},
		{name: "first duplicate key wins", mapping: "fields: {D: dup}", data: data, want: map[string]any{"D": int64(1)}},
		{name: "escapes decoded", mapping: "fields: {S: esc}", data: data, want: map[string]any{"S": `café "q"`}},
		{name: "object and array values", mapping: "fields: {O: address.geo, A: tags, E: empty, R: arr}", data: data,
			want: map[string]any{"O": map[string]any{"lat": 48.8}, "A": []any{"x", "y"}, "E": map[string]any{}, "R": []any{}}},
		{name: "same path twice", mapping: "fields: {A: email, B: email}", data: data, want: map[string]any{"A": "ann@example.com", "B": "ann@example.com"}},
		{name: "path and its parent", mapping: "fields: {A: address, B: address.city}", data: data,
			want: map[string]any{"A": map[string]any{"city": "Paris", "zip": "75001", "geo": map[string]any{"lat": 48.8}}, "B": "Paris"}},
		{name: "empty data", mapping: "fields: {E: email}", data: ``, want: map[string]any{}},
		{name: "data not an object", mapping: "fields: {E: email}", data: `[1,2]`, want: map[string]any{}},
		{name: "envelope", mapping: "fields: {I: $event.id, T: $event.type, S: $event.source, U: $event.subject, W: $event.time}", data: data,
			want: map[string]any{"I": "ev-1", "T": "loyalty.member.upserted", "S": "ledger", "U": "M1", "W": "2024-05-01T22:30:00Z"}},
	})
}

func TestEnvelopeEmptyAttributesAreMissing(t *testing.T) {
	m := mustCompile(t, "fields: {U: $event.subject, W: $event.time, R: {from: $event.id, required: true}}")
	_, err := m.Apply(context.Background(), mappings.Input{Data: []byte(`{}`)})
	var re *mappings.RecordError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "R", re.Field)
	assert.Contains(t, err.Error(), "$event.id is empty")
	got, err := m.Apply(context.Background(), mappings.Input{ID: "x", Data: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"R": "x"}, got)
}

func TestValueMapDefaultRequired(t *testing.T) {
	const statusMap = `
fields:
  Status__c:
    from: status
    map: {active: Active, suspended: Inactive, 1: One, true: Yes, nulled: null}
`
	runApply(t, []applyCase{
		{name: "constants", mapping: "fields: {S: {value: x}, I: {value: 3}, F: {value: 2.5}, B: {value: true}, N: {value: null}, O: {value: {a: [1, b]}}}", data: `{}`,
			want: map[string]any{"S": "x", "I": int64(3), "F": 2.5, "B": true, "N": nil, "O": map[string]any{"a": []any{int64(1), "b"}}}},
		{name: "quoted number stays text", mapping: `fields: {S: {value: "0012"}}`, data: `{}`, want: map[string]any{"S": "0012"}},
		{name: "map hit", mapping: statusMap, data: `{"status":"active"}`, want: map[string]any{"Status__c": "Active"}},
		{name: "map numeric key", mapping: statusMap, data: `{"status":1}`, want: map[string]any{"Status__c": "One"}},
		{name: "map boolean key", mapping: statusMap, data: `{"status":true}`, want: map[string]any{"Status__c": "Yes"}},
		{name: "map to null", mapping: statusMap, data: `{"status":"nulled"}`, want: map[string]any{"Status__c": nil}},
		{name: "map miss is a record error", mapping: statusMap, data: `{"status":"gone"}`, field: "Status__c",
			wantErr: "field Status__c: value \"gone\" is not in the map (known: `active`, `suspended`, `1`, `true`, `nulled`)"},
		{name: "map miss on an object", mapping: statusMap, data: `{"status":{"a":1}}`, field: "Status__c", wantErr: "value an object is not in the map"},
		{name: "map is case-sensitive", mapping: statusMap, data: `{"status":"ACTIVE"}`, field: "Status__c", wantErr: `value "ACTIVE" is not in the map`},
		{name: "map missing source is omitted", mapping: statusMap, data: `{}`, want: map[string]any{}},
		{name: "map null source stays null", mapping: statusMap, data: `{"status":null}`, want: map[string]any{"Status__c": nil}},
		{name: "fallback", mapping: "fields: {S: {from: s, map: {a: A}, fallback: Other}}", data: `{"s":"z"}`, want: map[string]any{"S": "Other"}},
		{name: "null fallback", mapping: "fields: {S: {from: s, map: {a: A}, fallback: null}}", data: `{"s":"z"}`, want: map[string]any{"S": nil}},
		{name: "fallback not used on hit", mapping: "fields: {S: {from: s, map: {a: A}, fallback: Other}}", data: `{"s":"a"}`, want: map[string]any{"S": "A"}},
		{name: "default on missing", mapping: "fields: {P: {from: p, default: 0}}", data: `{}`, want: map[string]any{"P": int64(0)}},
		{name: "default on null", mapping: "fields: {P: {from: p, default: 0}}", data: `{"p":null}`, want: map[string]any{"P": int64(0)}},
		{name: "default not on present", mapping: "fields: {P: {from: p, default: 0}}", data: `{"p":7}`, want: map[string]any{"P": int64(7)}},
		{name: "default not on empty string", mapping: "fields: {P: {from: p, default: x}}", data: `{"p":""}`, want: map[string]any{"P": ""}},
		{name: "default is the final value (not mapped)", mapping: "fields: {S: {from: s, map: {a: A}, default: Bronze}}", data: `{}`, want: map[string]any{"S": "Bronze"}},
		{name: "default after map to null", mapping: "fields: {S: {from: s, map: {a: null}, default: D}}", data: `{"s":"a"}`, want: map[string]any{"S": "D"}},
		{name: "null default makes a missing value null", mapping: "fields: {S: {from: s, default: null}}", data: `{}`, want: map[string]any{"S": nil}},
		{name: "required present", mapping: "fields: {E: {from: email, required: true}}", data: `{"email":"x"}`, want: map[string]any{"E": "x"}},
		{name: "required missing", mapping: "fields: {E: {from: email, required: true}}", data: `{}`, field: "E",
			wantErr: "field E: required value is missing (`email` is not in the event data)"},
		{name: "required null", mapping: "fields: {E: {from: email, required: true}}", data: `{"email":null}`, field: "E",
			wantErr: "field E: required value is null (`email` is null)"},
		{name: "required made null by a transform", mapping: "fields: {E: {from: email, transform: empty_to_null, required: true}}", data: `{"email":"  "}`, field: "E",
			wantErr: "required value is null (`email` became null)"},
		{name: "required with default", mapping: "fields: {E: {from: email, required: true, default: null}}", data: `{}`, field: "E", wantErr: "required value is null"},
		{name: "required false", mapping: "fields: {E: {from: email, required: false}}", data: `{}`, want: map[string]any{}},
	})
}

func TestConstantsAreNotShared(t *testing.T) {
	m := mustCompile(t, "fields: {O: {value: {a: [1]}}, D: {from: x, default: {b: 1}}}")
	first, err := m.Apply(context.Background(), input(`{}`))
	require.NoError(t, err)
	first["O"].(map[string]any)["a"].([]any)[0] = "changed"
	first["D"].(map[string]any)["b"] = "changed"
	second, err := m.Apply(context.Background(), input(`{}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"O": map[string]any{"a": []any{int64(1)}}, "D": map[string]any{"b": int64(1)}}, second)
}

func TestResultDoesNotAliasInput(t *testing.T) {
	m := mustCompile(t, "fields: {E: email}")
	data := []byte(`{"email":"ann@example.com"}`)
	got, err := m.Apply(context.Background(), mappings.Input{Data: data})
	require.NoError(t, err)
	copy(data, bytesRepeat('x', len(data)))
	assert.Equal(t, "ann@example.com", got["E"])
}

func bytesRepeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestNestedObjectsAndArrays(t *testing.T) {
	data := `{"id":"M1","address":{"city":"Paris"},"items":[{"sku":"a","qty":2,"price":1.25,"opts":["g"]},{"sku":"b","qty":1,"price":3,"opts":[]}],"tags":["x",null,"y"],"none":null,"str":"s"}`
	runApply(t, []applyCase{
		{name: "nested object", mapping: `
fields:
  Address:
    fields:
      City: address.city
      Country: {value: FR}
      Zip: address.zip
`, data: data, want: map[string]any{"Address": map[string]any{"City": "Paris", "Country": "FR"}}},
		{name: "each with fields", mapping: `
fields:
  Lines:
    each: items
    fields:
      Sku: {from: sku, transform: upper}
      Total: {expr: 'qty * price'}
      Member: $root.id
      Event: $event.id
      First: opts.0
`, data: data, want: map[string]any{"Lines": []any{
			map[string]any{"Sku": "A", "Total": 2.5, "Member": "M1", "Event": "ev-1", "First": "g"},
			map[string]any{"Sku": "B", "Total": int64(3), "Member": "M1", "Event": "ev-1"},
		}}},
		{name: "each scalar elements with transform", mapping: "fields: {T: {each: tags, transform: upper}}", data: data,
			want: map[string]any{"T": []any{"X", nil, "Y"}}},
		{name: "each with from", mapping: "fields: {S: {each: items, from: sku}}", data: data, want: map[string]any{"S": []any{"a", "b"}}},
		{name: "each with expr", mapping: "fields: {S: {each: items, expr: 'sku + \":\" + string(qty)'}}", data: data, want: map[string]any{"S": []any{"a:2", "b:1"}}},
		{name: "each with $this", mapping: "fields: {S: {each: tags, expr: '$this ?? \"-\"'}}", data: data, want: map[string]any{"S": []any{"x", "-", "y"}}},
		{name: "each missing is omitted", mapping: "fields: {S: {each: nope, from: a}}", data: data, want: map[string]any{}},
		{name: "each null stays null", mapping: "fields: {S: {each: none, from: a}}", data: data, want: map[string]any{"S": nil}},
		{name: "each missing with default", mapping: "fields: {S: {each: nope, from: a, default: []}}", data: data, want: map[string]any{"S": []any{}}},
		{name: "each missing required", mapping: "fields: {S: {each: nope, from: a, required: true}}", data: data, field: "S", wantErr: "required value is missing"},
		{name: "each over non-array", mapping: "fields: {S: {each: str, from: a}}", data: data, field: "S", wantErr: "`each` needs an array, got \"s\""},
		{name: "error inside each names the element", mapping: `
fields:
  Lines:
    each: items
    fields:
      Opt: {from: opts.0, required: true}
`, data: data, field: "Lines[1].Opt", wantErr: "field Lines[1].Opt: required value is missing (`opts.0` is not in the event data)"},
		{name: "error in nested each names both elements", mapping: `
fields:
  L:
    each: items
    fields:
      O: {each: opts, from: x, required: true}
      P: {each: opts, expr: '$this * 2'}
`, data: data, field: "L[0].P[0]", wantErr: "field L[0].P[0]: expression:"},
		{name: "nested each", mapping: `
fields:
  L:
    each: items
    fields:
      O: {each: opts, transform: upper}
      S: sku
`, data: data, want: map[string]any{"L": []any{map[string]any{"O": []any{"G"}, "S": "a"}, map[string]any{"O": []any{}, "S": "b"}}}},
	})
}

func TestExpressions(t *testing.T) {
	data := `{"first":"Ann","last":"Lee","points":1234.5,"qty":3,"tier":"gold","birth":"1990-04-12","ts":"2024-05-01T22:30:00Z",
		"address":{"city":"Paris"},"tags":["a","b"],"n":null,"email":" Ann@Example.COM ","phone":"06 12 34 56 78","odd key":"v","items":[{"q":1},{"q":2}]}`
	runApply(t, []applyCase{
		{name: "string concat", mapping: `fields: {F: {expr: 'first + " " + last'}}`, data: data, want: map[string]any{"F": "Ann Lee"}},
		{name: "arithmetic", mapping: `fields: {P: {expr: 'points * 2'}, Q: {expr: 'qty + 1'}, D: {expr: 'qty / 2'}}`, data: data,
			want: map[string]any{"P": 2469.0, "Q": int64(4), "D": 1.5}},
		{name: "conditional", mapping: `fields: {T: {expr: 'tier == "gold" ? "Gold" : "Other"'}}`, data: data, want: map[string]any{"T": "Gold"}},
		{name: "if else", mapping: `fields: {T: {expr: 'if points > 1000 { "high" } else { "low" }'}}`, data: data, want: map[string]any{"T": "high"}},
		{name: "null coalescing on missing", mapping: `fields: {T: {expr: 'nickname ?? first'}}`, data: data, want: map[string]any{"T": "Ann"}},
		{name: "null coalescing on null", mapping: `fields: {T: {expr: 'n ?? "none"'}}`, data: data, want: map[string]any{"T": "none"}},
		{name: "nested path is nil-safe", mapping: `fields: {C: {expr: 'address.city'}, Z: {expr: 'nope.deeper.city ?? "?"'}}`, data: data,
			want: map[string]any{"C": "Paris", "Z": "?"}},
		{name: "bracket access", mapping: `fields: {O: {expr: '$this["odd key"]'}, T: {expr: 'tags[1]'}}`, data: data, want: map[string]any{"O": "v", "T": "b"}},
		{name: "builtins", mapping: `fields: {U: {expr: 'upper(trim(email))'}, L: {expr: 'len(tags)'}, J: {expr: 'join(tags, ";")'}, S: {expr: 'sum(map(items, .q))'}}`, data: data,
			want: map[string]any{"U": "ANN@EXAMPLE.COM", "L": int64(2), "J": "a;b", "S": int64(3)}},
		{name: "hash PII", mapping: `fields: {H: {expr: 'sha256(lower(trim(email)))'}}`, data: data,
			want: map[string]any{"H": "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476"}},
		{name: "date parse and format in a zone", mapping: `fields: {D: {expr: 'formatTime(date(ts), "2006-01-02 15:04", "Europe/Paris")'}}`, data: data,
			want: map[string]any{"D": "2024-05-02 00:30"}},
		{name: "parseTime with layout and zone", mapping: `fields: {D: {expr: 'parseTime("12/04/1990 08:00", "02/01/2006 15:04", "America/New_York")'}}`, data: data,
			want: map[string]any{"D": "1990-04-12T08:00:00-04:00"}},
		{name: "time result becomes RFC 3339", mapping: `fields: {D: {expr: 'date(birth)'}}`, data: data, want: map[string]any{"D": "1990-04-12T00:00:00Z"}},
		{name: "age from birth date", mapping: `fields: {A: {expr: '$event.time.Year() - toTime(birth).Year()'}}`, data: data, want: map[string]any{"A": int64(34)}},
		{name: "event attributes", mapping: `fields: {K: {expr: '$event.source + "/" + $event.subject + "/" + $event.id'}, Y: {expr: '$event.time.Year()'}}`, data: data,
			want: map[string]any{"K": "ledger/M1/ev-1", "Y": int64(2024)}},
		{name: "number formatting", mapping: `fields: {N: {expr: 'formatNumber(points, 2, ",")'}, R: {expr: 'roundTo(points / 7, 3)'}, S: {expr: 'sprintf("%05d", qty)'}}`, data: data,
			want: map[string]any{"N": "1,234.50", "R": 176.357, "S": "00003"}},
		{name: "phone", mapping: `fields: {P: {expr: 'e164(phone, "FR")'}}`, data: data, want: map[string]any{"P": "+33612345678"}},
		{name: "let", mapping: `fields: {F: {expr: 'let full = first + " " + last; upper(full)'}}`, data: data, want: map[string]any{"F": "ANN LEE"}},
		{name: "nil result is null", mapping: `fields: {N: {expr: 'nope'}}`, data: data, want: map[string]any{"N": nil}},
		{name: "nil result with default", mapping: `fields: {N: {expr: 'nope', default: 0}}`, data: data, want: map[string]any{"N": int64(0)}},
		{name: "object result", mapping: `fields: {O: {expr: '{"a": qty, "b": [first]}'}}`, data: data,
			want: map[string]any{"O": map[string]any{"a": int64(3), "b": []any{"Ann"}}}},
		{name: "coalesce skips blank", mapping: `fields: {C: {expr: 'coalesce(n, "", first)'}}`, data: data, want: map[string]any{"C": "Ann"}},
		{name: "runtime error is a record error", mapping: `fields: {X: {expr: 'first * 2'}}`, data: data, field: "X", wantErr: "field X: expression:"},
		{name: "missing operand is a record error", mapping: `fields: {X: {expr: 'nope + 1'}}`, data: data, field: "X", wantErr: "field X: expression:"},
		{name: "NaN is not JSON", mapping: `fields: {X: {expr: '0.0 / 0.0'}}`, data: data, field: "X", wantErr: "not a JSON number"},
	})
}

func TestTypedSource(t *testing.T) {
	const m = `
source:
  fields:
    points: number
    qty: integer
    name: string
    vip: boolean
    birth: time
    address: {city: string}
    items: [{sku: string}]
fields:
  P: {expr: 'points + 1'}
  Q: {expr: 'qty * 2'}
  N: {expr: 'name + "!"'}
  V: {expr: 'vip ? "yes" : "no"'}
  Y: {expr: 'birth.Year()'}
  C: {expr: 'address.city'}
  S: {each: items, expr: 'upper(sku)'}
`
	runApply(t, []applyCase{
		{name: "coerced", mapping: m, data: `{"points":"10.5","qty":"4","name":42,"vip":"true","birth":"1990-01-02","address":{"city":"Lyon"},"items":[{"sku":"a"}]}`,
			want: map[string]any{"P": 11.5, "Q": int64(8), "N": "42!", "V": "yes", "Y": int64(1990), "C": "Lyon", "S": []any{"A"}}},
		{name: "bad number", mapping: m, data: `{"points":"ten","qty":1,"name":"a","vip":true,"birth":"1990-01-02"}`, field: "P",
			wantErr: "source field points: \"ten\" is not a number"},
		{name: "bad integer", mapping: m, data: `{"points":1,"qty":1.5,"name":"a","vip":true,"birth":"1990-01-02"}`, field: "P", wantErr: "source field qty: 1.5 is not a whole number"},
		{name: "bad time", mapping: m, data: `{"points":1,"qty":1,"name":"a","vip":true,"birth":"soon"}`, field: "P", wantErr: "source field birth: \"soon\" is not a time"},
		{name: "object where string declared", mapping: m, data: `{"points":1,"qty":1,"name":{"a":1},"vip":true,"birth":"1990-01-02"}`, field: "P", wantErr: "expected a string, got {\"a\":1}"},
	})
}

func TestTransforms(t *testing.T) {
	data := `{"s":"  Hello World  ","email":" Ann@Example.COM ","long":"abcdéfghij","n":1234.5678,"neg":-2.5,"i":"42","b":"yes",
		"phone_fr":"06 12 34 56 78","phone_us":"(415) 555-0100","phone_intl":"+44 20 7946 0958","phone_00":"0044 20 7946 0958","bad_phone":"call me",
		"ts":"2024-05-01T22:30:00Z","sf":"2024-05-01T22:30:00.000+0000","unix":1714602600,"unix_ms":1714602600000,"day":"01/05/2024",
		"csv":"a, b,,c","list":["Ab","Cd"],"nums":[1.26,2.71],"empty":"   ","obj":{"a":1}}`
	runApply(t, []applyCase{
		{name: "trim lower upper title", mapping: "fields: {T: {from: s, transform: [trim]}, L: {from: s, transform: [trim, lower]}, U: {from: s, transform: 'trim | upper'}, C: {from: s, transform: [lower, title]}}", data: data,
			want: map[string]any{"T": "Hello World", "L": "hello world", "U": "HELLO WORLD", "C": "  Hello World  "}},
		{name: "truncate counts characters", mapping: "fields: {T: {from: long, transform: [truncate(5)]}, Z: {from: long, transform: [truncate(0)]}, A: {from: long, transform: [truncate(50)]}}", data: data,
			want: map[string]any{"T": "abcdé", "Z": "", "A": "abcdéfghij"}},
		{name: "sha256 of normalised email", mapping: "fields: {H: {from: email, transform: [trim, lower, sha256]}}", data: data,
			want: map[string]any{"H": "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476"}},
		{name: "e164", mapping: `fields: {F: {from: phone_fr, transform: ['e164("FR")']}, U: {from: phone_us, transform: [e164(US)]}, I: {from: phone_intl, transform: [e164]}, Z: {from: phone_00, transform: [e164]}, C: {from: phone_us, transform: ['e164("+1")']}}`, data: data,
			want: map[string]any{"F": "+33612345678", "U": "+14155550100", "I": "+442079460958", "Z": "+442079460958", "C": "+14155550100"}},
		{name: "e164 without a country code", mapping: "fields: {P: {from: phone_fr, transform: [e164]}}", data: data, field: "P", wantErr: "has no country code"},
		{name: "e164 not a number", mapping: "fields: {P: {from: bad_phone, transform: [e164(FR)]}}", data: data, field: "P", wantErr: "is not a phone number"},
		{name: "round", mapping: "fields: {R: {from: n, transform: [round(2)]}, W: {from: n, transform: [round]}, N: {from: neg, transform: [round]}}", data: data,
			want: map[string]any{"R": 1234.57, "W": int64(1235), "N": int64(-3)}},
		{name: "format_number", mapping: `fields: {F: {from: n, transform: ['format_number(2, ",")']}, P: {from: n, transform: [format_number(0)]}}`, data: data,
			want: map[string]any{"F": "1,234.57", "P": "1235"}},
		{name: "conversions", mapping: "fields: {I: {from: i, transform: [integer]}, N: {from: i, transform: [number]}, S: {from: n, transform: [string]}, B: {from: b, transform: [boolean]}, D: {from: phone_us, transform: [digits]}}", data: data,
			want: map[string]any{"I": int64(42), "N": float64(42), "S": "1234.5678", "B": true, "D": "4155550100"}},
		{name: "number parse error", mapping: "fields: {X: {from: s, transform: [number]}}", data: data, field: "X", wantErr: "transform number: \"  Hello World  \" is not a number"},
		{name: "dates", mapping: `fields: {D: {from: ts, transform: [date]}, P: {from: ts, transform: ['date("Europe/Paris")']}, T: {from: sf, transform: [datetime]}, U: {from: unix, transform: [datetime]}, M: {from: unix_ms, transform: [date]}}`, data: data,
			want: map[string]any{"D": "2024-05-01", "P": "2024-05-02", "T": "2024-05-01T22:30:00.000Z", "U": "2024-05-01T22:30:00.000Z", "M": "2024-05-01"}},
		{name: "format and parse time", mapping: `fields: {F: {from: ts, transform: ['format_time("Mon 2 Jan 2006 15:04", "Asia/Tokyo")']}, P: {from: day, transform: ['parse_time("02/01/2006", "Europe/Paris")', datetime]}, U: {from: ts, transform: [unix]}, M: {from: ts, transform: [unix_ms]}}`, data: data,
			want: map[string]any{"F": "Thu 2 May 2024 07:30", "P": "2024-04-30T22:00:00.000Z", "U": int64(1714602600), "M": int64(1714602600000)}},
		{name: "a date stays that date in any zone", mapping: `fields: {D: {from: day, transform: ['date("America/New_York")']}, T: {from: day, transform: ['format_time("2006-01-02 15:04 MST", "America/New_York")']}}`, data: `{"day":"2024-05-01"}`,
			want: map[string]any{"D": "2024-05-01", "T": "2024-05-01 00:00 EDT"}},
		{name: "parse_time mismatch", mapping: `fields: {P: {from: ts, transform: ['parse_time("02/01/2006")']}}`, data: data, field: "P", wantErr: "does not match the layout"},
		{name: "date of non-time", mapping: `fields: {P: {from: s, transform: [date]}}`, data: data, field: "P", wantErr: "is not a time"},
		{name: "split and join", mapping: `fields: {S: {from: csv, transform: ['split(",")']}, J: {from: list, transform: ['join(";")']}, R: {from: csv, transform: ['split(",")', upper, 'join("|")']}}`, data: data,
			want: map[string]any{"S": []any{"a", "b", "c"}, "J": "Ab;Cd", "R": "A|B|C"}},
		{name: "element-wise on arrays", mapping: `fields: {L: {from: list, transform: [lower]}, R: {from: nums, transform: [round(1)]}, F: {from: list, transform: [first]}, Z: {from: list, transform: [last, upper]}}`, data: data,
			want: map[string]any{"L": []any{"ab", "cd"}, "R": []any{1.3, 2.7}, "F": "Ab", "Z": "CD"}},
		{name: "empty_to_null and default", mapping: `fields: {E: {from: empty, transform: [empty_to_null], default: none}}`, data: data, want: map[string]any{"E": "none"}},
		{name: "replace", mapping: `fields: {R: {from: s, transform: [trim, 'replace(" ", "_")']}}`, data: data, want: map[string]any{"R": "Hello_World"}},
		{name: "transform on an object fails", mapping: `fields: {X: {from: obj, transform: [lower]}}`, data: data, field: "X", wantErr: "transform lower: expected text, got an object"},
		{name: "transform skipped on null", mapping: `fields: {X: {from: nope, transform: [lower]}, Y: {from: nul, transform: [e164]}}`, data: `{"nul":null}`, want: map[string]any{"Y": nil}},
	})
}

func TestTransformNamesAreDocumented(t *testing.T) {
	for _, n := range mappings.TransformNames() {
		usage, doc, ok := mappings.TransformUsage(n)
		require.True(t, ok, n)
		assert.NotEmpty(t, usage, n)
		assert.NotEmpty(t, doc, n)
	}
	_, _, ok := mappings.TransformUsage("nope")
	assert.False(t, ok)
}

type mapResolver map[string]string

func (r mapResolver) Resolve(_ context.Context, system, object, key string) (string, bool, error) {
	if system == "broken" {
		return "", false, errors.New("database is down")
	}
	id, ok := r[system+"/"+object+"/"+key]
	return id, ok, nil
}

func TestLookup(t *testing.T) {
	xref := mapResolver{"salesforce/LoyaltyProgramMember/M1": "0lM000000000001", "salesforce/LoyaltyProgramMember/42": "0lM000000000042"}
	lk := func(extra string) string {
		return "fields: {Member__c: {from: member, lookup: {system: salesforce, object: LoyaltyProgramMember" + extra + "}}}"
	}
	runApply(t, []applyCase{
		{name: "found", mapping: lk(""), data: `{"member":"M1"}`, want: map[string]any{"Member__c": "0lM000000000001"}},
		{name: "numeric key", mapping: lk(""), data: `{"member":42}`, want: map[string]any{"Member__c": "0lM000000000042"}},
		{name: "missing source is omitted", mapping: lk(""), data: `{}`, want: map[string]any{}},
		{name: "not found: null", mapping: lk(", missing: null"), data: `{"member":"M9"}`, want: map[string]any{"Member__c": nil}},
		{name: "not found: omit", mapping: lk(", missing: omit"), data: `{"member":"M9"}`, want: map[string]any{}},
		{name: "not found: error", mapping: lk(", missing: error"), data: `{"member":"M9"}`, field: "Member__c",
			wantErr: "field Member__c: no salesforce LoyaltyProgramMember is known for \"M9\" in the cross-reference"},
		{name: "not found: null then default", mapping: "fields: {M: {from: member, lookup: {system: salesforce, object: LoyaltyProgramMember, missing: null}, default: none}}", data: `{"member":"M9"}`,
			want: map[string]any{"M": "none"}},
		{name: "object key", mapping: lk(""), data: `{"member":{"a":1}}`, field: "Member__c", wantErr: "lookup key must be text or a number"},
		{name: "external id relationship", mapping: "fields: {Member__r: {from: member, lookup: {external_id: Ext_Id__c}}}", data: `{"member":"M1"}`,
			want: map[string]any{"Member__r": map[string]any{"Ext_Id__c": "M1"}}},
		{name: "external id as nested fields", mapping: "fields: {Member__r: {fields: {Ext_Id__c: member}}}", data: `{"member":"M1"}`,
			want: map[string]any{"Member__r": map[string]any{"Ext_Id__c": "M1"}}},
	}, mappings.WithResolver(xref))

	t.Run("not found retries by default", func(t *testing.T) {
		m := mustCompile(t, lk(""), mappings.WithResolver(xref))
		_, err := m.Apply(context.Background(), input(`{"member":"M9"}`))
		require.ErrorIs(t, err, mappings.ErrUnresolved)
		var re *mappings.RecordError
		assert.False(t, errors.As(err, &re), "an unresolved lookup is retryable, not a record error")
		assert.Contains(t, err.Error(), "field Member__c")
	})
	t.Run("resolver failure is retryable", func(t *testing.T) {
		m := mustCompile(t, "fields: {M: {from: member, lookup: {system: broken, object: X}}}", mappings.WithResolver(xref))
		_, err := m.Apply(context.Background(), input(`{"member":"M1"}`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "database is down")
		var re *mappings.RecordError
		assert.False(t, errors.As(err, &re))
	})
	t.Run("no resolver", func(t *testing.T) {
		m := mustCompile(t, lk(""))
		_, err := m.Apply(context.Background(), input(`{"member":"M1"}`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "compiled without a cross-reference")
		got, err := m.WithResolver(xref).Apply(context.Background(), input(`{"member":"M1"}`))
		require.NoError(t, err)
		assert.Equal(t, "0lM000000000001", got["Member__c"])
	})
}

func TestWhen(t *testing.T) {
	m := mustCompile(t, `
when: 'status != "deleted" && $event.type startsWith "loyalty.member."'
fields: {S: status}
`)
	got, err := m.Apply(context.Background(), input(`{"status":"active"}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"S": "active"}, got)
	_, err = m.Apply(context.Background(), input(`{"status":"deleted"}`))
	assert.ErrorIs(t, err, mappings.ErrFiltered)

	m = mustCompile(t, "when: 'points > 10'\nfields: {S: status}")
	_, err = m.Apply(context.Background(), input(`{"points":"x"}`))
	var re *mappings.RecordError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "when", re.Field)

	m = mustCompile(t, "when: 'flag'\nfields: {S: status}")
	_, err = m.Apply(context.Background(), input(`{"flag":"yes"}`))
	require.ErrorAs(t, err, &re, "a when that is not a boolean is an error, not a silent filter")
	_, err = m.Apply(context.Background(), input(`{"flag":null}`))
	assert.ErrorIs(t, err, mappings.ErrFiltered, "a missing flag reads as false")
	got, err = m.Apply(context.Background(), input(`{"flag":true,"status":"a"}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"S": "a"}, got)
}

func TestConcurrentApply(t *testing.T) {
	m := mustCompile(t, `
fields:
  E: {from: email, transform: [lower]}
  F: {expr: 'first + "-" + string(n)'}
  L: {each: items, expr: 'x * 2'}
`)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				data := fmt.Sprintf(`{"email":"A%d@X","first":"f%d","n":%d,"items":[{"x":%d}]}`, i, g, i, i)
				got, err := m.Apply(context.Background(), input(data))
				if err != nil {
					errs <- err
					return
				}
				want := map[string]any{"E": fmt.Sprintf("a%d@x", i), "F": fmt.Sprintf("f%d-%d", g, i), "L": []any{int64(2 * i)}}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					errs <- fmt.Errorf("goroutine %d record %d: got %v want %v", g, i, got, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each a whole line of the error
	}{
		{"unknown field key", "fields:\n  A: {frm: x}\n", []string{"m.yaml:2:7: fields.A.frm: unknown key `frm`; did you mean `from`?"}},
		{"unknown top key", "feilds:\n  A: x\n", []string{"m.yaml:1:1: feilds: unknown key `feilds`; did you mean `fields`?"}},
		{"no source", "fields:\n  A: {required: true}\n", []string{"m.yaml:2:3: fields.A: the field has no source; give it one of `from`, `value`, `expr`, `each` or `fields`"}},
		{"two sources", "fields:\n  A: {from: x, value: 1}\n", []string{"m.yaml:2:23: fields.A: the field has more than one source (from, value); keep one of them"}},
		{"unknown transform", "fields:\n  A: {from: x, transform: [trim, lowr]}\n", []string{"m.yaml:2:27: fields.A.transform: unknown transform `lowr`; did you mean `lower`?"}},
		{"transform arity", "fields:\n  A: {from: x, transform: [truncate]}\n", []string{"m.yaml:2:27: fields.A.transform: transform `truncate` takes 1 argument, got 0; usage: `truncate(n)`"}},
		{"transform arg type", "fields:\n  A: {from: x, transform: [truncate(abc)]}\n", []string{"m.yaml:2:27: fields.A.transform: transform `truncate`: argument 1 must be a whole number, got \"abc\"; usage: `truncate(n)`"}},
		{"transform bad zone", "fields:\n  A: {from: x, transform: ['date(\"Mars/Olympus\")']}\n", []string{"m.yaml:2:27: fields.A.transform: transform `date(\"Mars/Olympus\")`: unknown time zone \"Mars/Olympus\" (use an IANA name like \"Europe/Paris\"); usage: `date | date(\"Europe/Paris\")`"}},
		{"transform bad region", "fields:\n  A: {from: x, transform: [e164(ZZ)]}\n", []string{"m.yaml:2:27: fields.A.transform: transform `e164(ZZ)`: unknown region"}},
		{"transform syntax", "fields:\n  A: {from: x, transform: ['truncate(4']}\n", []string{"m.yaml:2:27: fields.A.transform: transform `truncate(4`: missing `)`; write a name like `lower` or a call like `truncate(40)`"}},
		{"unknown envelope attribute", "fields:\n  A: $event.subjet\n", []string{"m.yaml:2:6: fields.A.from: unknown envelope attribute `$event.subjet`; did you mean `subject`?"}},
		{"unknown $ variable", "fields:\n  A: $evnt.id\n", []string{"m.yaml:2:6: fields.A.from: unknown variable `$evnt`; did you mean `$event`?"}},
		{"expr syntax", "fields:\n  A: {expr: 'x * '}\n", []string{"m.yaml:2:17: fields.A.expr: expression: unexpected token EOF"}},
		{"expr type", "fields:\n  A: {expr: '\"a\" * 2'}\n", []string{"m.yaml:2:18: fields.A.expr: expression: invalid operation: * (mismatched types string and int)"}},
		{"expr unknown function", "fields:\n  A: {expr: 'lowr(x)'}\n", []string{"m.yaml:2:14: fields.A.expr: unknown function `lowr`; did you mean `lower`?"}},
		{"expr bad function args", "fields:\n  A: {expr: 'truncate(x)'}\n", []string{"m.yaml:2:14: fields.A.expr: expression: not enough arguments to call truncate"}},
		{"expr envelope attribute", "fields:\n  A: {expr: '$event.tme'}\n", []string{"m.yaml:2:14: fields.A.expr: unknown envelope attribute `$event.tme`; did you mean `time`?"}},
		{"expr envelope type", "fields:\n  A: {expr: '$event.id * 2'}\n", []string{"m.yaml:2:24: fields.A.expr: expression: invalid operation: * (mismatched types string and int)"}},
		{"expr $env", "fields:\n  A: {expr: '$env'}\n", []string{"m.yaml:2:14: fields.A.expr: `$env` is not available in mappings; read data fields by name, the envelope through `$event`"}},
		{"when not boolean", "when: '1 + 1'\nfields:\n  A: x\n", []string{"m.yaml:1:8: when: expression: expected bool, but got int"}},
		{"when block scalar", "when: |\n  a &&\n  lowr(b)\nfields:\n  A: x\n", []string{"m.yaml:3:1: when: unknown function `lowr`; did you mean `lower`?"}},
		{"map without entries", "fields:\n  A: {from: x, map: {}}\n", []string{"m.yaml:2:21: fields.A.map: the map is empty; list `source value: target value` entries"}},
		{"duplicate map key", "fields:\n  A: {from: x, map: {a: A, a: B}}\n", []string{"m.yaml:2:28: fields.A.map.a: duplicate map key `a`"}},
		{"fallback without map", "fields:\n  A: {from: x, fallback: y}\n", []string{"m.yaml:2:26: fields.A.fallback: `fallback` only applies to `map`; add a `map`, or use `default` for missing values"}},
		{"required not bool", "fields:\n  A: {from: x, required: yes please}\n", []string{"m.yaml:2:26: fields.A.required: `required` takes true or false, got \"yes please\""}},
		{"required with default", "fields:\n  A: {from: x, required: true, default: 1}\n", []string{"m.yaml:2:26: fields.A.required: `required` never fails when a non-null `default` is given; remove one of them"}},
		{"duplicate field", "fields:\n  A: x\n  A: y\n", []string{"m.yaml:3:3: fields.A: duplicate field `A`"}},
		{"lookup incomplete", "fields:\n  A: {from: x, lookup: {system: salesforce}}\n", []string{"m.yaml:2:24: fields.A.lookup: `lookup` needs `system` and `object` (the cross-reference to read), or `external_id`"}},
		{"lookup missing mode", "fields:\n  A: {from: x, lookup: {system: s, object: o, missing: nul}}\n", []string{"m.yaml:2:24: fields.A.lookup.missing: unknown value `nul`; did you mean `null`?"}},
		{"lookup both", "fields:\n  A: {from: x, lookup: {system: s, external_id: E}}\n", []string{"m.yaml:2:24: fields.A.lookup: `external_id` builds the relationship itself; it takes no `system`, `object` or `missing`; use either `external_id` or `system` + `object`"}},
		{"lookup on object", "fields:\n  A: {fields: {B: x}, lookup: {external_id: E}}\n", []string{"m.yaml:2:31: fields.A.lookup: `lookup` needs a scalar source (`from`, `value` or `expr`)"}},
		{"nested problem path", "fields:\n  A:\n    fields:\n      B: {from: x, transform: [uper]}\n", []string{"m.yaml:4:31: fields.A.fields.B.transform: unknown transform `uper`; did you mean `upper`?"}},
		{"each with fields and transform", "fields:\n  A: {each: xs, fields: {B: b}, transform: [lower]}\n", []string{"m.yaml:2:13: fields.A: with `each` and `fields`, put `from`, `expr`, `transform`, `map` and `lookup` on the element's fields"}},
		{"each with value", "fields:\n  A: {each: xs, value: 1}\n", []string{"m.yaml:2:3: fields.A: `each` combines with `fields`, or with one of `from`/`expr` read from each element, not with value"}},
		{"fields not a mapping", "fields: [a, b]\n", []string{"m.yaml:1:9: fields: expected a mapping of target field names, got a list; write `FieldName: {from: path}` entries"}},
		{"bad value", "fields:\n  A: {value: .nan}\n", []string{"m.yaml:2:14: fields.A.value: .nan is not a JSON number"}},
		{"several problems at once", "fields:\n  A: {from: x, transform: [lowr]}\n  B: {expr: 'uppr(y)'}\n", []string{
			"m.yaml:2:27: fields.A.transform: unknown transform `lowr`; did you mean `lower`?",
			"m.yaml:3:14: fields.B.expr: unknown function `uppr`; did you mean `upper`?"}},
		{"unknown source field (declared)", "source:\n  fields: {email: string, address: {city: string}}\nfields:\n  A: emial\n  B: address.cty\n  C: {expr: 'adress.city'}\n", []string{
			"m.yaml:4:6: fields.A.from: unknown source field `emial`: the source has no field `emial`; did you mean `email`?",
			"m.yaml:5:6: fields.B.from: unknown source field `address.cty`: `address` has no field `cty`; did you mean `city`?",
			"m.yaml:6:14: fields.C.expr: unknown source field `adress`: the source has no field `adress`; did you mean `address`?"}},
		{"unknown source field (sample)", "source:\n  sample: {email: a@b.c, points: 3}\nfields:\n  A: {expr: 'pionts + 1'}\n", []string{
			"m.yaml:4:14: fields.A.expr: unknown source field `pionts`: the source has no field `pionts`; did you mean `points`?"}},
		{"declared type makes a type error", "source:\n  fields: {email: string}\nfields:\n  A: {expr: 'email * 2'}\n", []string{
			"m.yaml:4:20: fields.A.expr: expression: invalid operation: * (mismatched types string and int)"}},
		{"unknown source type", "source:\n  fields: {email: strng}\nfields:\n  A: email\n", []string{"m.yaml:2:19: source.fields.email: unknown type `strng`; did you mean `string`?"}},
		{"each over a declared scalar", "source:\n  fields: {email: string}\nfields:\n  A: {each: email, from: x}\n", []string{"m.yaml:4:13: fields.A.each: `email` is declared as string, not an array"}},
		{"unknown field inside each (declared)", "source:\n  fields: {items: [{sku: string}]}\nfields:\n  A: {each: items, from: skuu}\n", []string{
			"m.yaml:4:26: fields.A.from: unknown source field `skuu`: the source has no field `skuu`; did you mean `sku`?"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(t, tc.src)
			require.Error(t, err)
			var ps mappings.Problems
			require.ErrorAs(t, err, &ps)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tc.want), err.Error())
			for i, w := range tc.want {
				if strings.HasSuffix(w, "unknown region") || strings.HasSuffix(w, "`lookup` needs `system` and `object` (the cross-reference to read), or `external_id`") {
					assert.True(t, strings.HasPrefix(lines[i], w), "line %d:\n got %s\nwant %s…", i, lines[i], w)
					continue
				}
				assert.Equal(t, w, lines[i])
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		require.NoError(t, writeFile(p, body))
		return p
	}
	p := write("member-to-contact.yaml", "fields:\n  Email: email\n")
	spec, err := mappings.ParseFile(p)
	require.NoError(t, err)
	assert.Equal(t, "member-to-contact", spec.Name, "the name defaults to the file name")
	m, err := mappings.Compile(spec)
	require.NoError(t, err)
	assert.Equal(t, []string{"Email"}, m.Fields())

	write("sample.json", `{"email":"a@b.c"}`)
	p = write("with-sample.yaml", "name: s\nsource:\n  sample_file: sample.json\nfields:\n  Email: emal\n")
	spec, err = mappings.ParseFile(p)
	require.NoError(t, err)
	_, err = mappings.Compile(spec)
	require.EqualError(t, err, p+":5:10: fields.Email.from: unknown source field `emal`: the source has no field `emal`; did you mean `email`?")

	_, err = mappings.ParseFile(write("bad.yaml", "fields: [\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.yaml: invalid YAML")

	_, err = mappings.ParseFile(write("empty.yaml", ""))
	require.EqualError(t, err, dir+"/empty.yaml:1:1: the mapping file is empty; write a mapping with a `fields:` block")

	_, err = mappings.ParseFile(dir + "/nope.yaml")
	require.Error(t, err)

	// An inline node can point at a file, relative to the config file.
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("file: member-to-contact.yaml\n"), &n))
	spec, err = mappings.ParseNode(dir+"/hub.yaml", &n)
	require.NoError(t, err)
	assert.Equal(t, "member-to-contact", spec.Name)
	require.NoError(t, yaml.Unmarshal([]byte("file: x.yaml\nfields: {A: b}\n"), &n))
	_, err = mappings.ParseNode(dir+"/hub.yaml", &n)
	require.EqualError(t, err, dir+"/hub.yaml:1:7: file: `file:` names a mapping file and stands alone; move the other keys into that file")
}

func TestMoreCompileErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"transform on object", "fields:\n  A: {fields: {B: b}, transform: [lower]}\n", "m.yaml:2:34: fields.A.transform: a nested object cannot be transformed; transform its fields instead"},
		{"map on object", "fields:\n  A: {fields: {B: b}, map: {a: b}}\n", "m.yaml:2:28: fields.A.map: a nested object cannot be mapped; map its fields instead"},
		{"each over envelope", "fields:\n  A: {each: $event.id}\n", "m.yaml:2:13: fields.A.each: `each` reads an array from the data, not an envelope attribute"},
		{"empty field name", "fields:\n  '': x\n", "m.yaml:2:3: fields: empty field name"},
		{"field not a mapping", "fields:\n  A: [x]\n", "m.yaml:2:6: fields.A: expected a field definition (a mapping with from, value, expr, ...) or a source path, got a list"},
		{"from not text", "fields:\n  A: {from: [x]}\n", "m.yaml:2:13: fields.A.from: expected a string, got a list"},
		{"transform not a list", "fields:\n  A: {from: x, transform: {a: b}}\n", "m.yaml:2:27: fields.A.transform: expected a list of transforms, got a mapping; write `transform: [trim, lower]`"},
		{"transform item not text", "fields:\n  A: {from: x, transform: [[a]]}\n", "m.yaml:2:28: fields.A.transform: a transform is a name like `lower` or `truncate(40)`, got a list"},
		{"map not a mapping", "fields:\n  A: {from: x, map: [a]}\n", "m.yaml:2:21: fields.A.map: expected a mapping of source value → target value, got a list; write `map: {active: Active}`"},
		{"map null key", "fields:\n  A: {from: x, map: {~: a}}\n", "m.yaml:2:22: fields.A.map: a map key is a source value (string, number or boolean), got null; null source values use `default`"},
		{"unknown lookup key", "fields:\n  A: {from: x, lookup: {sytem: s}}\n", "m.yaml:2:25: fields.A.lookup.sytem: unknown key `sytem`; did you mean `system`?"},
		{"object key not text", "fields:\n  A: {value: {[a]: 1}}\n", "m.yaml:2:14: fields.A.value: object keys must be strings, got a list"},
		{"unknown $ in expr", "fields:\n  A: {expr: '$rot.x'}\n", "m.yaml:2:14: fields.A.expr: unknown variable `$rot`; did you mean `$root`?"},
		{"empty $root path", "fields:\n  A: {from: '$root.'}\n", "m.yaml:2:14: fields.A.from: empty path"},
		{"source not a mapping", "source: [a]\nfields:\n  A: x\n", "m.yaml:1:9: source: expected a mapping, got a list"},
		{"source fields not a mapping", "source:\n  fields: [a]\nfields:\n  A: x\n", "m.yaml:2:11: source.fields: expected a mapping of field name → type, got a list; write `fields: {email: string, points: number}`"},
		{"source array of two types", "source:\n  fields: {a: [string, number]}\nfields:\n  A: x\n", "m.yaml:2:15: source.fields.a: an array type lists one element type, like `[string]` or `[{sku: string}]`"},
		{"source bad element type", "source:\n  fields: {a: [strin]}\nfields:\n  A: x\n", "m.yaml:2:16: source.fields.a: unknown element type \"strin\"; valid types: `string`, `number`, `integer`, `boolean`, `time`, `object`, `array`, `any`"},
		{"sample not an object", "source:\n  sample: [1]\nfields:\n  A: x\n", "m.yaml:2:11: source.sample: the sample must be a JSON object (the event's data)"},
		{"sample file missing", "source:\n  sample_file: nope.json\nfields:\n  A: x\n", "m.yaml:2:16: source.sample_file: cannot read the sample: open nope.json: no such file or directory"},
		{"not a mapping", "[a, b]\n", "m.yaml:1:1: a mapping must be a YAML mapping with a `fields:` block, not a list"},
		{"no fields block", "name: x\n", "m.yaml:1:1: the mapping has no `fields:` block; add `fields:` with one entry per target field"},
		{"name not text", "name: [x]\nfields:\n  A: x\n", "m.yaml:1:7: name: expected a string, got a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(t, tc.src)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestEachNestingLimit(t *testing.T) {
	src := "fields:\n  A:\n"
	indent := "    "
	for range 9 {
		src += indent + "each: a\n" + indent + "fields:\n" + indent + "  B:\n"
		indent += "    "
	}
	src += indent + "from: x\n"
	_, err := compile(t, src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "`each` is nested more than 8 levels deep")
}

func TestUnknownTransformListsAll(t *testing.T) {
	_, err := compile(t, "fields:\n  A: {from: x, transform: [zzzzzzzz]}\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown transform `zzzzzzzz`; built-in transforms: `boolean`, `date`, `datetime`")
}
