package mappings

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The native evaluator must give what the expr VM gives, or give up. These
// tests run random expressions over random records both ways and compare the
// results (value and Go type) and errors.

const nativeDeclared = `
source:
  fields: {s: string, t: string, n: number, m: number, i: integer, j: integer, b: boolean, c: boolean, o: object, a: array, w: time}
`

var (
	nativeVarsDeclared = []string{"s", "t", "n", "m", "i", "j", "b", "c", "o", "a", "w"}
	nativeVarsUntyped  = []string{"s", "t", "n", "m", "i", "j", "b", "c", "o", "a", "w", "$this.s", "$this[\"odd key\"]"}
	nativeDataValues   = []string{`"abc"`, `" X y "`, `""`, `"12"`, `"-1.5"`, `"true"`, `"é日本x"`, `"2024-05-01T10:00:00Z"`,
		`0`, `1`, `-1`, `2.5`, `1e300`, `40210`, `3`, `-0.5`, `9007199254740993`, `true`, `false`, `null`, `{"a":1}`, `[1,"x"]`}
	nativeLiterals = []string{`"abc"`, `""`, `"É"`, `"gold"`, `0`, `1`, `-3`, `2`, `25000`, `2.5`, `0.01`, `1e308`, `true`, `false`, `nil`}
	nativeBinary   = []string{"==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "**", "&&", "||", "??", "and", "or"}
)

type exprGen struct {
	r    *rand.Rand
	vars []string
}

func (g *exprGen) expr(depth int) string {
	if depth <= 0 || g.r.IntN(4) == 0 {
		switch g.r.IntN(6) {
		case 0, 1:
			return nativeLiterals[g.r.IntN(len(nativeLiterals))]
		case 2:
			return []string{"$event.id", "$event.subject", "$event.type"}[g.r.IntN(3)]
		default:
			return g.vars[g.r.IntN(len(g.vars))]
		}
	}
	d := depth - 1
	switch g.r.IntN(14) {
	case 0:
		return []string{"!", "-", "+", "not "}[g.r.IntN(4)] + "(" + g.expr(d) + ")"
	case 1:
		return "(" + g.expr(d) + " ? " + g.expr(d) + " : " + g.expr(d) + ")"
	case 2:
		switch g.r.IntN(3) {
		case 0:
			return g.expr(d) + "[" + g.expr(0) + ":" + g.expr(0) + "]"
		case 1:
			return g.expr(d) + "[:" + g.expr(0) + "]"
		}
		return g.expr(d) + "[" + g.expr(0) + ":]"
	case 3:
		f := []string{"upper", "lower", "trim", "len", "sha256", "digits"}[g.r.IntN(6)]
		return f + "(" + g.expr(d) + ")"
	case 4:
		switch g.r.IntN(4) {
		case 0:
			return "roundTo(" + g.expr(d) + ", " + g.expr(0) + ")"
		case 1:
			return "coalesce(" + g.expr(d) + ", " + g.expr(d) + ", " + g.expr(0) + ")"
		case 2:
			return "truncate(" + g.expr(d) + ", " + g.expr(0) + ")"
		}
		return "trim(" + g.expr(d) + ", " + g.expr(0) + ")"
	case 5:
		return g.expr(d) + " + " + g.expr(d) + " + " + g.expr(d) + " + " + g.expr(d)
	}
	return "(" + g.expr(d) + " " + nativeBinary[g.r.IntN(len(nativeBinary))] + " " + g.expr(d) + ")"
}

func (g *exprGen) data() string {
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, k := range []string{"s", "t", "n", "m", "i", "j", "b", "c", "o", "a", "w", "odd key"} {
		if g.r.IntN(8) == 0 {
			continue // missing
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", k, nativeDataValues[g.r.IntN(len(nativeDataValues))])
	}
	b.WriteString("}")
	return b.String()
}

// compileExprMapping compiles a mapping with one expression field (and, when
// asWhen, the expression as its `when`).
func compileExprMapping(t testing.TB, src, header string, asWhen bool) *Mapping {
	t.Helper()
	q, _ := json.Marshal(src)
	text := header + "fields:\n  X: {expr: " + string(q) + "}\n"
	if asWhen {
		text = header + "when: " + string(q) + "\nfields:\n  X: {value: 1}\n"
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		return nil
	}
	spec, err := ParseNode("native.yaml", &n)
	if err != nil {
		return nil
	}
	m, err := Compile(spec)
	if err != nil {
		return nil
	}
	return m
}

// withoutNative returns a copy of m whose expressions all run on the VM.
func withoutNative(m *Mapping) *Mapping {
	c := *m
	c.whenX = nil
	var strip func([]*field) []*field
	strip = func(fs []*field) []*field {
		out := make([]*field, len(fs))
		for i, f := range fs {
			g := *f
			g.xprog = nil
			g.children = strip(f.children)
			if f.elem != nil {
				e := *f.elem
				e.xprog = nil
				e.children = strip(f.elem.children)
				g.elem = &e
			}
			out[i] = &g
		}
		return out
	}
	c.fields = strip(m.fields)
	c.pool = nil
	mc := &c
	mc.pool = newStatePool(mc)
	return mc
}

func sameOutcome(a, b map[string]any, ea, eb error) bool {
	if (ea == nil) != (eb == nil) {
		return false
	}
	if ea != nil {
		return ea.Error() == eb.Error()
	}
	return reflect.DeepEqual(a, b)
}

func TestNativeMatchesVM(t *testing.T) {
	ctx := context.Background()
	ev := Input{ID: "ev-1", Type: "loyalty.member.upserted", Subject: "M1", Time: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}
	for _, header := range []string{"", nativeDeclared} {
		vars := nativeVarsUntyped
		if header != "" {
			vars = nativeVarsDeclared
		}
		g := &exprGen{r: rand.New(rand.NewPCG(1, uint64(len(header)))), vars: vars}
		compiled, native, nativeRuns, total := 0, 0, 0, 0
		for range 3000 {
			src := g.expr(3)
			asWhen := g.r.IntN(4) == 0
			m := compileExprMapping(t, src, header, asWhen)
			if m == nil {
				continue
			}
			compiled++
			x := m.whenX
			if !asWhen {
				x = m.fields[0].xprog
			}
			if x == nil {
				continue
			}
			native++
			vmOnly := withoutNative(m)
			for range 12 {
				in := ev
				in.Data = []byte(g.data())
				got, gotErr := m.Apply(ctx, in)
				want, wantErr := vmOnly.Apply(ctx, in)
				total++
				if !sameOutcome(got, want, gotErr, wantErr) {
					t.Fatalf("expression %q (when: %v) on %s:\nnative: %#v, %v\n    vm: %#v, %v", src, asWhen, in.Data, got, gotErr, want, wantErr)
				}
				// Count the records the evaluator handled itself.
				st := m.pool.Get().(*state)
				st.ev = eventEnv{ID: in.ID, Type: in.Type, Subject: in.Subject, Time: in.Time}
				m.root.ext.extract(string(in.Data), st.levels[0])
				if vals, err := st.vars(m.root); err == nil {
					if _, ok := st.xeval(x, vals); ok {
						nativeRuns++
					}
				}
				st.release()
				m.pool.Put(st)
			}
		}
		t.Logf("source %q: %d expressions compiled, %d native; %d of %d runs native", strings.TrimSpace(header), compiled, native, nativeRuns, total)
		if compiled < 500 || native < compiled/3 || nativeRuns < total/5 {
			t.Fatalf("the test exercises too little: %d compiled, %d native, %d of %d runs native", compiled, native, nativeRuns, total)
		}
	}
}

// compileFile parses and compiles a mapping file, failing tb on errors.
func compileFile(tb testing.TB, path string) *Mapping {
	tb.Helper()
	spec, err := ParseFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := Compile(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestNativeCoversMemberMapping keeps the benchmark's expressions on the
// native evaluator.
func TestNativeCoversMemberMapping(t *testing.T) {
	m := compileFile(t, "testdata/member-to-lpm.yaml")
	if m.whenX == nil {
		t.Error("`when` runs on the VM")
	}
	for _, f := range m.fields {
		if f.kind == srcExpr && f.xprog == nil {
			t.Errorf("field %s runs on the VM", f.name)
		}
	}
}

// TestNativeMatchesVMExhaustive runs each operator and function the
// evaluator knows on every pair of sample values.
func TestNativeMatchesVMExhaustive(t *testing.T) {
	ctx := context.Background()
	templates := []string{"-x", "!x", "+x", "x ? y : 1", "x[1:]", "x[:y]", "x[y:]", "x[-2:y]", "upper(x)", "lower(x)",
		"len(x)", "trim(x)", "trim(x, y)", "roundTo(x, y)", "roundTo(x, 2)", "sha256(x)", "coalesce(x, y)", "x + y + x",
		"x + y + \"!\"", "x ?? y", "x?.y", "$event.id + x"}
	for _, op := range nativeBinary {
		templates = append(templates, "x "+op+" y")
	}
	values := append([]string{""}, nativeDataValues...) // "": missing
	native := 0
	for _, tpl := range templates {
		for _, asWhen := range []bool{false, true} {
			m := compileExprMapping(t, tpl, "", asWhen)
			if m == nil {
				continue
			}
			if (asWhen && m.whenX != nil) || (!asWhen && m.fields[0].xprog != nil) {
				native++
			}
			vmOnly := withoutNative(m)
			for _, x := range values {
				for _, y := range values {
					var parts []string
					if x != "" {
						parts = append(parts, `"x":`+x)
					}
					if y != "" {
						parts = append(parts, `"y":`+y)
					}
					in := Input{ID: "ev-1", Data: []byte("{" + strings.Join(parts, ",") + "}")}
					got, gotErr := m.Apply(ctx, in)
					want, wantErr := vmOnly.Apply(ctx, in)
					if !sameOutcome(got, want, gotErr, wantErr) {
						t.Fatalf("expression %q (when: %v) on %s:\nnative: %#v, %v\n    vm: %#v, %v", tpl, asWhen, in.Data, got, gotErr, want, wantErr)
					}
				}
			}
		}
	}
	t.Logf("%d of %d expressions run natively", native, 2*len(templates))
	if native < len(templates) {
		t.Fatalf("only %d of %d expressions run natively", native, 2*len(templates))
	}
}

// FuzzNativeMatchesVM: for any expression the native evaluator takes, on
// any record, it gives what the VM gives.
func FuzzNativeMatchesVM(f *testing.F) {
	for _, e := range []string{"x + y + \"!\"", "upper(x[0:1]) + x[1:] + \" \" + upper(y)", "roundTo(x * 0.01, 2)",
		"(x ?? 0) > 25000 && y == \"gold\"", "x != \"deleted\"", "len(x) % 3 == 1 ? -x : x ** 2", "coalesce(x, y, $event.id)"} {
		for _, d := range []string{`{"x":"ann","y":"lee"}`, `{"x":12345.5,"y":"gold"}`, `{"x":40210}`, `{}`, `{"x":null,"y":[1]}`, `{"x":"é日本","y":-3}`} {
			f.Add(e, d, false)
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, src, data string, asWhen bool) {
		m := compileExprMapping(t, src, "", asWhen)
		if m == nil {
			return
		}
		if (asWhen && m.whenX == nil) || (!asWhen && m.fields[0].xprog == nil) {
			return // the VM runs it either way
		}
		in := Input{ID: "ev-1", Subject: "M1", Data: []byte(data)}
		got, gotErr := m.Apply(ctx, in)
		want, wantErr := withoutNative(m).Apply(ctx, in)
		if !sameOutcome(got, want, gotErr, wantErr) {
			t.Fatalf("expression %q (when: %v) on %s:\nnative: %#v, %v\n    vm: %#v, %v", src, asWhen, data, got, gotErr, want, wantErr)
		}
	})
}

// withoutFastPaths returns a copy of m that maps every field the generic
// way: no native evaluator, no text fast path, no plain copy, no shared
// text.
func withoutFastPaths(m *Mapping) *Mapping {
	c := withoutNative(m)
	var strip func([]*field)
	strip = func(fs []*field) {
		for _, f := range fs {
			f.fastText, f.plain, f.memo, f.reuse = false, false, 0, 0
			strip(f.children)
			if f.elem != nil {
				f.elem.fastText, f.elem.plain, f.elem.memo, f.elem.reuse = false, false, 0, 0
				strip(f.elem.children)
			}
		}
	}
	strip(c.fields)
	return c
}

// The text fast path, the plain copy and shared text give what the generic
// path gives, errors included, on values of every type.
func TestFastPathsMatchGeneric(t *testing.T) {
	ctx := context.Background()
	mappings := []string{
		"A: {from: e, transform: [trim, lower]}\n  B: {from: e, transform: [trim, lower, sha256]}\n  C: {from: e, transform: [trim, lower, 'truncate(2)', upper]}",
		"C: {from: e, transform: [trim]}\n  D: {from: e, transform: [trim, upper, 'truncate(3)']}",
		"E: {from: e, map: {abc: X, \"1\": One, \"true\": T, \"2.5\": F}, fallback: F}",
		"G: {from: e, map: {abc: X}, default: Z}",
		"H: {from: e, transform: [lower], map: {abc: X, \" x y \": Y}}",
		"I: {from: e, transform: ['join(\";\")', upper]}",
		"J: {from: e, transform: ['join(\"-\")']}",
		"K: e\n  L: {from: e, default: 7}\n  R: {from: e, required: true}",
		"M: {from: e, transform: [date]}\n  N: {from: e, transform: ['date(\"Asia/Tokyo\")']}",
		"O: {from: e, transform: [trim, number]}",
		"P: {from: e, transform: ['e164(\"FR\")']}",
		"Q: {from: e, transform: [empty_to_null], default: D}",
		"S: {each: l, fields: {Q: {from: s, transform: [trim, lower]}, R: {from: s, transform: [trim, lower, sha256]}, S: s}}",
		"T: {each: l, from: s, transform: [upper]}",
	}
	values := append([]string{"", `" ABC "`, `"abc"`, `" x Y "`, `"2024-05-01T10:00:00Z"`, `"2024-05-01"`, `"06 12 34 56 78"`, `"12.5"`,
		`["a","B",null]`, `["a",1,true]`, `[{"x":1}]`, `[]`, `"a\"b\\u00e9"`, `"  "`}, nativeDataValues...)
	runs := 0
	for _, fields := range mappings {
		m := mustCompileInternal(t, "fields:\n  "+fields+"\n")
		generic := withoutFastPaths(m)
		for _, v := range values {
			for _, w := range values {
				var parts []string
				if v != "" {
					parts = append(parts, `"e":`+v)
				}
				if w != "" {
					parts = append(parts, `"l":[{"s":`+w+`},{"s":`+v+`},{}]`)
				}
				in := Input{ID: "ev-1", Data: []byte("{" + strings.Join(parts, ",") + "}")}
				got, gotErr := m.Apply(ctx, in)
				want, wantErr := generic.Apply(ctx, in)
				if !sameOutcome(got, want, gotErr, wantErr) {
					t.Fatalf("%s\non %s:\nfast:    %#v, %v\ngeneric: %#v, %v", fields, in.Data, got, gotErr, want, wantErr)
				}
				if gotErr == nil {
					runs++
				}
			}
		}
	}
	if runs < 1000 {
		t.Fatalf("only %d records mapped without an error", runs)
	}
	// The sharing is in place where it should be.
	m := mustCompileInternal(t, "fields:\n  "+mappings[0]+"\n")
	if m.fields[0].memo == 0 || m.fields[1].reuse != m.fields[0].memo || m.fields[2].reuse != m.fields[0].memo || m.fields[2].reuseN != 2 {
		t.Errorf("B and C do not start from A's text")
	}
}

func mustCompileInternal(t testing.TB, src string) *Mapping {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	spec, err := ParseNode("m.yaml", &n)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConcurrentMemberMapping applies the member mapping from many
// goroutines (run it with -race): pooled state never leaks between calls.
func TestConcurrentMemberMapping(t *testing.T) {
	m := compileFile(t, "testdata/member-to-lpm.yaml")
	ctx := context.Background()
	type rec struct {
		in   Input
		want map[string]any
		err  string
	}
	var recs []rec
	for i := range 40 {
		data := fmt.Sprintf(`{"id":"M-%d","status":%q,"tier":%q,"email":" U%d@Example.COM ","phone":"06 12 34 56 %02d","first_name":"ann%d","last_name":"lee","birth_date":"1990-04-%02d","enrolled_at":"2021-03-04T10:15:00Z","points":{"balance":%d.5,"lifetime":%d},"address":{"city":"C%d"},"preferences":{"language":%q},"program":"P","tags":["t%d",null]}`,
			i, []string{"active", "closed", "deleted", "odd"}[i%4], []string{"gold", "silver", "x"}[i%3], i, i, i, 1+i%28, i*1000, i*2000, i, []string{"fr", "de", "xx"}[i%3], i)
		in := Input{ID: fmt.Sprintf("ev-%d", i), Data: []byte(data)}
		got, err := m.Apply(ctx, in)
		r := rec{in: in, want: got}
		if err != nil {
			r.err = err.Error()
		}
		recs = append(recs, r)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for k := range 400 {
				r := recs[(k*7+g)%len(recs)]
				got, err := m.Apply(ctx, r.in)
				gotErr := ""
				if err != nil {
					gotErr = err.Error()
				}
				if gotErr != r.err || !reflect.DeepEqual(got, r.want) {
					errs <- fmt.Errorf("record %s: got %v, %q; want %v, %q", r.in.Data, got, gotErr, r.want, r.err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
