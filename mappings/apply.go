package mappings

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"
)

// lookup is a compiled `lookup`.
type lookup struct {
	system, object string
	missing        string
	externalID     string
}

var missingModes = []string{"retry", "error", "null", "omit"}

func (c *compiler) lookup(l *LookupSpec, path string) *lookup {
	out := &lookup{system: l.System, object: l.Object, missing: l.Missing, externalID: l.ExternalID}
	if l.ExternalID != "" {
		if l.System != "" || l.Object != "" || l.Missing != "" {
			c.add(l.Pos, path, "`external_id` builds the relationship itself; it takes no `system`, `object` or `missing`", "use either `external_id` or `system` + `object`")
		}
		return out
	}
	if l.System == "" || l.Object == "" {
		c.add(l.Pos, path, "`lookup` needs `system` and `object` (the cross-reference to read), or `external_id`",
			"e.g. `lookup: {system: salesforce, object: LoyaltyProgramMember}` or `lookup: {external_id: Ext_Id__c}`")
	}
	if out.missing == "" {
		out.missing = "retry"
	}
	if !contains(missingModes, out.missing) {
		c.add(l.Pos, path+".missing", "unknown value `"+l.Missing+"`", hintOr(didYouMean(l.Missing, missingModes), "valid: "+quoteList(missingModes, 4)))
	}
	return out
}

// state is the per-call working memory of Apply, pooled.
type state struct {
	m      *Mapping
	ctx    context.Context
	ev     eventEnv
	levels [][]gjson.Result // extracted values per scope level
	elems  []gjson.Result   // current element per level (level ≥ 1)
	vals   [][]xval         // expression variables per level
	valsOf []*scope         // scope whose vals are filled at that level (nil: stale)
	envs   []map[string]any // expression env per level, for the VM
	envOf  []*scope         // scope whose env is filled at that level (nil: stale)
	index  []int            // current element index per level, for messages
	args   []any            // arguments of a natively called function
	memo   []textMemo       // text results kept for siblings (field.memo)
	mem    recordMem        // the data, and the memory the result is built in
	vm     vm.VM
}

// textMemo is a field's text after its text transforms.
type textMemo struct {
	s  string
	ok bool
}

func (m *Mapping) newState() any {
	n := m.depth + 1
	st := &state{
		m:      m,
		levels: make([][]gjson.Result, n),
		elems:  make([]gjson.Result, n),
		vals:   make([][]xval, n),
		valsOf: make([]*scope, n),
		envs:   make([]map[string]any, n),
		envOf:  make([]*scope, n),
		index:  make([]int, n),
		args:   make([]any, maxCallArgs),
		memo:   make([]textMemo, m.nmemo),
	}
	st.levels[0] = make([]gjson.Result, len(m.root.ext.paths))
	return st
}

// Apply maps one record. It returns ErrFiltered when the mapping's `when` is
// false, a *RecordError when the record cannot be mapped (permanent), an
// error wrapping ErrUnresolved when a lookup found no cross-reference entry
// yet (retryable), or another error when the cross-reference cannot be read
// (retryable). The result holds JSON-compatible values only.
func (m *Mapping) Apply(ctx context.Context, in Input) (map[string]any, error) {
	st := m.pool.Get().(*state)
	st.m, st.ctx = m, ctx
	st.ev = eventEnv{ID: in.ID, Type: in.Type, Source: in.Source, Subject: in.Subject, Time: in.Time}
	// The data is read in place, as text that must not outlive the call:
	// recordMem copies what the result keeps of it (and errors format
	// values, so they copy them too).
	st.mem.start(unsafe.String(unsafe.SliceData(in.Data), len(in.Data)))
	m.root.ext.extract(st.mem.doc, st.levels[0])
	out, err := st.run()
	st.release()
	m.pool.Put(st)
	return out, err
}

func (st *state) release() {
	for i := range st.levels {
		clear(st.levels[i])
	}
	clear(st.elems)
	clear(st.memo)
	for i, env := range st.envs {
		if env != nil {
			clear(env)
		}
		st.envOf[i] = nil
		clear(st.vals[i])
		st.valsOf[i] = nil
	}
	st.ctx = nil
	st.ev = eventEnv{}
	st.mem.finish()
}

func (st *state) run() (map[string]any, error) {
	m := st.m
	if m.when != nil {
		pass, err := st.when()
		if err != nil {
			return nil, err
		}
		if !pass {
			return nil, ErrFiltered
		}
	}
	out := make(map[string]any, len(m.fields))
	for _, f := range m.fields {
		v, ok, err := st.eval(f)
		if err != nil {
			return nil, err
		}
		if ok {
			out[f.name] = v
		}
	}
	return out, nil
}

// when evaluates the mapping's `when` condition.
func (st *state) when() (bool, error) {
	m := st.m
	vals, err := st.vars(m.root)
	if err != nil {
		return false, &RecordError{Field: "when", Err: err}
	}
	if m.whenX != nil {
		// The program casts its result to bool: nil reads as false.
		if x, ok := st.xeval(m.whenX, vals); ok && (x.k == xBool || x.k == xNil) {
			return x.b, nil
		}
	}
	env := st.env(m.root)
	ok, err := st.vm.Run(m.when, env)
	if err != nil {
		return false, &RecordError{Field: "when", Err: exprRunError(err)}
	}
	b, isBool := ok.(bool)
	if !isBool {
		return false, &RecordError{Field: "when", Err: fmt.Errorf("the condition returned %s, not true or false", describeValue(ok))}
	}
	return b, nil
}

// eval computes one field: its source, then transform → map → lookup on a
// present value, then default and required.
func (st *state) eval(f *field) (any, bool, error) {
	if f.plain {
		// A value copied from the data as it is.
		r := &st.levels[f.level][f.slot]
		if exists(*r) && r.Type != gjson.Null {
			return st.value(r), true, nil
		}
		return st.settle(f, nil, exists(*r))
	}
	var v any
	var ok, done, mapped bool
	var err error
	steps := f.transforms
	if f.memo > 0 {
		st.memo[f.memo-1].ok = false
	}
	if f.fastText {
		// Text read from the data through text transforms and a map, or
		// an array of text joined: no boxing in between.
		r := &st.levels[f.level][f.slot]
		switch {
		case r.Type == gjson.String && (f.textSteps > 0 || len(steps) == 0):
			s, n := r.Str, 0
			if f.reuse > 0 && st.memo[f.reuse-1].ok {
				s, n = st.memo[f.reuse-1].s, f.reuseN
			}
			if s, _, err = runText(&st.mem, steps[n:f.textSteps], s); err != nil {
				return nil, false, st.recordErr(f, err)
			}
			if f.memo > 0 {
				st.memo[f.memo-1] = textMemo{s: s, ok: true}
			}
			steps = steps[f.textSteps:]
			done, ok = true, true
			if len(steps) == 0 && f.hasMap {
				if v, err = st.mapText(f, s); err != nil {
					return nil, false, err
				}
				mapped = true
			} else {
				v = st.mem.str(s)
			}
		case f.joinFirst && r.IsArray():
			if s, joined := joinText(&st.mem, *r, steps[0].sep); joined {
				v, done, ok, steps = st.mem.str(s), true, true, steps[1:]
			}
		}
	}
	if !done {
		if v, ok, err = st.source(f); err != nil {
			return nil, false, err
		}
	}
	if ok && v != nil {
		if len(steps) > 0 {
			if v, err = runTransforms(&st.mem, steps, v); err != nil {
				return nil, false, st.recordErr(f, err)
			}
		}
		if f.hasMap && v != nil && !mapped {
			if v, err = st.mapValue(f, v); err != nil {
				return nil, false, err
			}
		}
		if f.lookup != nil && v != nil {
			if v, ok, err = st.lookup(f, v); err != nil {
				return nil, false, err
			}
		}
		if v, err = st.finalValue(v); err != nil {
			return nil, false, st.recordErr(f, err)
		}
	}
	return st.settle(f, v, ok)
}

// settle applies default and required to a field's value.
func (st *state) settle(f *field, v any, ok bool) (any, bool, error) {
	if (!ok || v == nil) && f.hasDefault {
		v, ok = cloneJSON(f.def), true
	}
	if f.required && (!ok || v == nil) {
		what := "missing"
		if ok {
			what = "null"
		}
		return nil, false, st.recordErr(f, fmt.Errorf("required value is %s (%s)", what, st.describeSource(f)))
	}
	return v, ok, nil
}

// source reads a field's raw value; ok is false when it is missing.
func (st *state) source(f *field) (any, bool, error) {
	switch f.kind {
	case srcPath:
		r := &st.levels[f.level][f.slot]
		if !exists(*r) {
			return nil, false, nil
		}
		return st.value(r), true, nil
	case srcThis:
		r := &st.elems[f.level]
		if !exists(*r) {
			return nil, false, nil
		}
		return st.value(r), true, nil
	case srcEvent:
		switch f.event {
		case evID:
			return st.mem.str(st.ev.ID), st.ev.ID != "", nil
		case evType:
			return st.mem.str(st.ev.Type), st.ev.Type != "", nil
		case evSource:
			return st.mem.str(st.ev.Source), st.ev.Source != "", nil
		case evSubject:
			return st.mem.str(st.ev.Subject), st.ev.Subject != "", nil
		case evTime:
			if st.ev.Time.IsZero() {
				return nil, false, nil
			}
			return st.ev.Time, true, nil
		}
	case srcConst:
		return cloneJSON(f.konst), true, nil
	case srcExpr:
		vals, err := st.vars(f.scope)
		if err != nil {
			return nil, false, st.recordErr(f, err)
		}
		if f.xprog != nil {
			if x, ok := st.xeval(f.xprog, vals); ok {
				v, err := st.xresult(x)
				if err != nil {
					return nil, false, st.recordErr(f, err)
				}
				return v, true, nil
			}
		}
		v, err := st.vm.Run(f.prog, st.env(f.scope))
		if err != nil {
			return nil, false, st.recordErr(f, exprRunError(err))
		}
		if v, err = exprResult(v); err != nil {
			return nil, false, st.recordErr(f, err)
		}
		return v, true, nil
	case srcObject:
		obj := make(map[string]any, len(f.children))
		for _, c := range f.children {
			v, ok, err := st.eval(c)
			if err != nil {
				return nil, false, err
			}
			if ok {
				obj[c.name] = v
			}
		}
		return obj, true, nil
	case srcEach:
		return st.each(f)
	}
	return nil, false, nil
}

func (st *state) each(f *field) (any, bool, error) {
	r := st.levels[f.level][f.slot]
	if !exists(r) {
		return nil, false, nil
	}
	if r.Type == gjson.Null {
		return nil, true, nil
	}
	if !r.IsArray() {
		return nil, false, st.recordErr(f, fmt.Errorf("`each` needs an array, got %s", shortJSON(r.Raw)))
	}
	es := f.eachScope
	lv := es.level
	if cap(st.levels[lv]) < len(es.ext.paths) {
		st.levels[lv] = make([]gjson.Result, len(es.ext.paths))
	}
	buf := st.levels[lv][:len(es.ext.paths)]
	st.levels[lv] = buf
	out := make([]any, 0, 4)
	var err error
	i := 0
	r.ForEach(func(_, el gjson.Result) bool {
		st.index[lv] = i
		st.elems[lv] = el
		st.envOf[lv] = nil
		st.valsOf[lv] = nil
		clear(buf)
		es.ext.extract(el.Raw, buf)
		var v any
		var ok bool
		if v, ok, err = st.eval(f.elem); err != nil {
			return false
		}
		if !ok {
			v = nil
		}
		out = append(out, v)
		i++
		return true
	})
	st.envOf[lv] = nil
	st.valsOf[lv] = nil
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// vars returns the expression variables of scope sc for the current record
// or element, reading and converting them on first use.
func (st *state) vars(sc *scope) ([]xval, error) {
	lv := sc.level
	if st.valsOf[lv] == sc {
		return st.vals[lv], nil
	}
	vals := st.vals[lv]
	if cap(vals) < len(sc.vars) {
		vals = make([]xval, len(sc.vars))
	}
	vals = vals[:len(sc.vars)]
	st.vals[lv] = vals
	st.valsOf[lv], st.envOf[lv] = nil, nil
	for i, v := range sc.vars {
		x, err := varXVal(&st.levels[v.level][v.slot], v.typ)
		if err != nil {
			clear(vals)
			return nil, fmt.Errorf("source field %s: %w", v.name, err)
		}
		vals[i] = x
	}
	st.valsOf[lv] = sc
	return vals, nil
}

// env returns the expression env of scope sc for the VM, built from its
// variables (st.vars(sc) must have succeeded).
func (st *state) env(sc *scope) map[string]any {
	lv := sc.level
	if st.envOf[lv] == sc {
		return st.envs[lv]
	}
	env := st.envs[lv]
	if env == nil {
		env = make(map[string]any, len(sc.vars)+1)
		st.envs[lv] = env
	} else {
		clear(env)
	}
	env["$event"] = &st.ev
	for i, v := range sc.vars {
		env[v.name] = st.vals[lv][i].box()
	}
	st.envOf[lv] = sc
	return env
}

// mapText is mapValue for text.
func (st *state) mapText(f *field, s string) (any, error) {
	if t, found := f.mapv[s]; found {
		return cloneJSON(t), nil
	}
	return st.mapValue(f, s)
}

func (st *state) mapValue(f *field, v any) (any, error) {
	key, ok := mapKey(v)
	if ok {
		if t, found := f.mapv[key]; found {
			return cloneJSON(t), nil
		}
	}
	if f.hasFallback {
		return cloneJSON(f.fallback), nil
	}
	return nil, st.recordErr(f, fmt.Errorf("value %s is not in the map (known: %s); add it to `map` or give a `fallback`",
		describeValue(v), quoteList(f.mapKeys, 12)))
}

func (st *state) lookup(f *field, v any) (any, bool, error) {
	l := f.lookup
	key, ok := mapKey(v)
	if !ok {
		return nil, false, st.recordErr(f, fmt.Errorf("lookup key must be text or a number, got %s", describeValue(v)))
	}
	if l.externalID != "" {
		return map[string]any{l.externalID: v}, true, nil
	}
	if st.m.resolver == nil {
		return nil, false, fmt.Errorf("mapping %s: field %s: lookup %s/%s: the mapping was compiled without a cross-reference (mappings.WithResolver)", st.m.name, st.label(f), l.system, l.object)
	}
	// The resolver may keep the key: it must not point into the data.
	id, found, err := st.m.resolver.Resolve(st.ctx, l.system, l.object, st.mem.keep(key))
	if err != nil {
		return nil, false, fmt.Errorf("mapping %s: field %s: lookup %s/%s %q: %w", st.m.name, st.label(f), l.system, l.object, key, err)
	}
	if found {
		return id, true, nil
	}
	switch l.missing {
	case "null":
		return nil, true, nil
	case "omit":
		return nil, false, nil
	case "error":
		return nil, false, st.recordErr(f, fmt.Errorf("no %s %s is known for %q in the cross-reference", l.system, l.object, key))
	}
	return nil, false, fmt.Errorf("mapping %s: field %s: %s %s for %q: %w", st.m.name, st.label(f), l.system, l.object, key, ErrUnresolved)
}

func (st *state) recordErr(f *field, err error) error {
	return &RecordError{Field: st.label(f), Err: err}
}

// label renders the field's label with the current element indexes:
// "Lines[].Sku" → "Lines[2].Sku".
func (st *state) label(f *field) string {
	l := f.label
	if !strings.Contains(l, "[]") {
		return l
	}
	var b strings.Builder
	lv := 1
	for {
		i := strings.Index(l, "[]")
		if i < 0 {
			b.WriteString(l)
			break
		}
		b.WriteString(l[:i])
		b.WriteString("[" + strconv.Itoa(st.index[min(lv, len(st.index)-1)]) + "]")
		l = l[i+2:]
		lv++
	}
	return b.String()
}

func (st *state) describeSource(f *field) string {
	switch f.kind {
	case srcPath:
		r := st.levels[f.level][f.slot]
		path := f.path
		if exists(r) && r.Type == gjson.Null {
			return "`" + path + "` is null"
		}
		if exists(r) {
			return "`" + path + "` became null"
		}
		return "`" + path + "` is not in the event data"
	case srcEvent:
		return "$event." + eventAttrs[f.event] + " is empty"
	case srcExpr:
		return "the expression returned nil"
	case srcEach:
		return "`each` source is missing"
	case srcThis:
		return "the element is null"
	}
	return "no value"
}

// finalValue makes a pipeline result JSON-compatible (times become
// RFC 3339 text) and safe to return (see recordMem.detach).
func (st *state) finalValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64:
		return v, nil
	case string, map[string]any:
		return st.mem.detach(v), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case []any:
		for i, e := range x {
			if t, ok := e.(time.Time); ok {
				x[i] = t.Format(time.RFC3339Nano)
			}
		}
		return st.mem.detach(x), nil
	}
	v, err := exprResult(v)
	if err != nil {
		return nil, err
	}
	return st.mem.detach(v), nil
}

// value is resultValue for a result of the data, with text kept (see
// recordMem.keep) and scalars boxed from the record's memory.
func (st *state) value(r *gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return st.mem.str(r.Str)
	case gjson.Number:
		if i, ok := intValue(r); ok {
			return st.mem.int(i)
		}
		return st.mem.float(r.Num)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Null:
		return nil
	}
	return st.mem.detach(resultValue(*r))
}

// cloneJSON copies composite constants so results never share memory.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}

func exprRunError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Prev != nil {
			return fmt.Errorf("expression: %w", fe.Prev)
		}
		return fmt.Errorf("expression: %s", fe.Message)
	}
	return fmt.Errorf("expression: %w", err)
}
