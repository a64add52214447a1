package mappings

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"
)

// Input is one record to map: the CloudEvent's attributes and its data.
// The attributes are $event.id, $event.type, $event.source, $event.subject
// and $event.time in mappings; an empty one counts as missing.
type Input struct {
	// ID is the CloudEvent id (the idempotency key).
	ID string
	// Type is the event type ("loyalty.member.upserted").
	Type string
	// Source is the CloudEvent source attribute.
	Source string
	// Subject is the entity id at the source.
	Subject string
	// Time is when the change happened at the source.
	Time time.Time
	// Data is the CloudEvent's data JSON (an object). Apply reads it in
	// place and must not race with writes to it; the result and errors never
	// alias it, so it may be reused once Apply returns.
	Data []byte
}

// Resolver reads the cross-reference: the id in system/object of the record
// whose id at the source is key. ok is false when there is no entry; err is
// for failures to read (they are retried).
type Resolver interface {
	Resolve(ctx context.Context, system, object, key string) (targetID string, ok bool, err error)
}

// Option configures Compile.
type Option func(*options)

type options struct {
	resolver Resolver
}

// WithResolver gives the mapping the cross-reference that `lookup` fields
// read. A mapping with such fields compiles without one (for validation and
// tests), but Apply then fails on those fields.
func WithResolver(r Resolver) Option {
	return func(o *options) { o.resolver = r }
}

// Mapping is a compiled mapping: safe for concurrent use, built once at
// config load, applied per record.
type Mapping struct {
	name     string
	file     string
	spec     *Spec
	root     *scope
	fields   []*field
	when     *vm.Program
	whenX    *xnode // `when` for the native evaluator; nil: the VM
	resolver Resolver
	pool     *sync.Pool // *state
	depth    int        // deepest scope level
	nmemo    int        // text results kept for siblings
}

// Name is the mapping's name (from `name:` or the file name).
func (m *Mapping) Name() string { return m.name }

// Spec returns the spec the mapping was compiled from.
func (m *Mapping) Spec() *Spec { return m.spec }

// Fields lists the top-level target fields in order.
func (m *Mapping) Fields() []string {
	out := make([]string, len(m.fields))
	for i, f := range m.fields {
		out[i] = f.name
	}
	return out
}

// WithResolver returns a copy of m that reads the cross-reference through r.
func (m *Mapping) WithResolver(r Resolver) *Mapping {
	c := *m
	c.resolver = r
	return &c
}

type srcKind uint8

const (
	srcNone   srcKind = iota
	srcPath           // a path slot
	srcEvent          // an envelope attribute
	srcConst          // value:
	srcExpr           // expr:
	srcObject         // fields: (nested object)
	srcEach           // each:
	srcThis           // inside each without from/expr: the element itself
)

type eventAttr uint8

const (
	evID eventAttr = iota
	evType
	evSource
	evSubject
	evTime
)

var eventAttrs = []string{"id", "type", "source", "subject", "time"}

// scope is where paths resolve: the event data (level 0) or the current
// element of an `each` (level 1, 2, ...).
type scope struct {
	level  int
	ext    *extractor
	parent *scope
	schema *schemaNode // declared shape of this scope's document; nil = unknown
	vars   []exprVar   // expression variables bound in this scope's env
	varIdx map[string]int
}

func newScope(parent *scope, schema *schemaNode) *scope {
	s := &scope{ext: newExtractor(), parent: parent, schema: schema, varIdx: map[string]int{}}
	if parent != nil {
		s.level = parent.level + 1
	}
	return s
}

func (s *scope) rootScope() *scope {
	for s.parent != nil {
		s = s.parent
	}
	return s
}

// field is a compiled target field.
type field struct {
	name  string // output key
	label string // for RecordError: "Address.City"
	kind  srcKind

	level int // scope level of slot
	slot  int
	path  string // the `from` path, for messages
	event eventAttr
	konst any
	prog  *vm.Program
	xprog *xnode // prog for the native evaluator; nil: the VM
	scope *scope // scope the expression's env is built in

	children  []*field
	eachScope *scope
	elem      *field // each without fields: the per-element pipeline

	transforms  []*transformStep
	textSteps   int  // leading transforms that work on text (sfn)
	joinFirst   bool // the first transform is join
	fastText    bool // a `from` path with text transforms, a map or a join first: see state.eval
	plain       bool // a `from` path and nothing else (default and required aside)
	memo        int  // 1 + index in state.memo where the text result is kept; 0: not kept
	reuse       int  // 1 + index in state.memo of a sibling's text result to start from; 0: none
	reuseN      int  // how many of the leading transforms that result has run
	mapv        map[string]any
	hasMap      bool
	mapKeys     []string
	fallback    any
	hasFallback bool
	lookup      *lookup

	def        any
	hasDefault bool
	required   bool

	spec    *FieldSpec // for positions in schema problems
	srcType string     // declared type of a `from` path ("" = unknown)
}

// Compile checks spec and builds the mapping. Every problem is reported at
// once, as Problems: `FILE:LINE:COL: fields.<name>: problem; hint`.
func Compile(spec *Spec, opts ...Option) (*Mapping, error) {
	if spec == nil {
		return nil, Problems{{Msg: "no mapping spec"}}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &compiler{file: spec.File}
	rootSchema := c.sourceSchema(spec.Source)
	m := &Mapping{name: spec.Name, file: spec.File, spec: spec, resolver: o.resolver}
	m.root = newScope(nil, rootSchema)
	if len(spec.Fields) == 0 {
		c.add(spec.Pos, "fields", "the mapping has no fields", "add `fields:` with one entry per target field")
	}
	m.fields = c.fields(spec.Fields, m.root, "fields", "")
	if strings.TrimSpace(spec.When) != "" {
		m.when, m.whenX = c.expression(spec.When, spec.WhenPos, "when", m.root, true)
	}
	if len(c.probs) > 0 {
		sortProblems(c.probs)
		return nil, c.probs
	}
	m.depth = c.maxLevel
	m.nmemo = c.nmemo
	m.pool = newStatePool(m)
	return m, nil
}

// newStatePool pools m's per-call working memory.
func newStatePool(m *Mapping) *sync.Pool {
	return &sync.Pool{New: func() any { return m.newState() }}
}

type compiler struct {
	file     string
	probs    Problems
	maxLevel int
	nmemo    int // text results kept for siblings (field.memo)
}

func (c *compiler) add(pos Pos, path, msg, hint string) {
	c.probs = append(c.probs, &Problem{File: c.file, Pos: pos, Path: path, Msg: msg, Hint: hint})
}

func (c *compiler) fields(specs []*FieldSpec, sc *scope, path, label string) []*field {
	out := make([]*field, 0, len(specs))
	for _, fs := range specs {
		if f := c.field(fs, sc, path+"."+fs.Name, join(label, fs.Name)); f != nil {
			out = append(out, f)
		}
	}
	c.shareText(out)
	return out
}

// shareText lets a field whose text transforms start with all of an
// earlier sibling's (same path) start from that sibling's result:
// `email | trim | lower` then `email | trim | lower | sha256` lowers once.
// Siblings run in order, so the earlier one has always run.
func (c *compiler) shareText(fields []*field) {
	for i, f := range fields {
		if f.kind != srcPath || f.textSteps == 0 {
			continue
		}
		var best *field
		for _, g := range fields[:i] {
			if g.kind != srcPath || g.level != f.level || g.slot != f.slot || g.textSteps == 0 || g.textSteps > f.textSteps {
				continue
			}
			same := true
			for k := 0; k < g.textSteps; k++ {
				same = same && g.transforms[k].sig == f.transforms[k].sig
			}
			if same && (best == nil || g.textSteps > best.textSteps) {
				best = g
			}
		}
		if best == nil {
			continue
		}
		if best.memo == 0 {
			c.nmemo++
			best.memo = c.nmemo
		}
		f.reuse, f.reuseN = best.memo, best.textSteps
	}
}

func (c *compiler) field(fs *FieldSpec, sc *scope, path, label string) *field {
	f := &field{name: fs.Name, label: label, required: fs.Required, def: fs.Default, hasDefault: fs.HasDefault, spec: fs}
	n := len(c.probs)

	var sources []string
	if fs.From != "" {
		sources = append(sources, "from")
	}
	if fs.HasValue {
		sources = append(sources, "value")
	}
	if fs.Expr != "" {
		sources = append(sources, "expr")
	}
	if fs.Each != "" {
		sources = append(sources, "each")
	}
	if len(fs.Fields) > 0 && fs.Each == "" {
		sources = append(sources, "fields")
	}
	switch {
	case len(sources) == 0:
		c.add(fs.Pos, path, "the field has no source", "give it one of `from`, `value`, `expr`, `each` or `fields`")
		return nil
	case len(sources) > 1 && fs.Each != "" && !(len(sources) == 2 && (fs.From != "" || fs.Expr != "")):
		c.add(fs.Pos, path, "`each` combines with `fields`, or with one of `from`/`expr` read from each element, not with "+strings.Join(sources[:len(sources)-1], " and "), "")
		return nil
	case len(sources) > 1 && fs.Each == "":
		c.add(fs.KeyPos(sources[1]), path, "the field has more than one source ("+strings.Join(sources, ", ")+")", "keep one of them")
		return nil
	}

	switch {
	case fs.Each != "":
		c.each(f, fs, sc, path, label)
	case fs.From != "":
		c.from(f, fs.From, fs.KeyPos("from"), sc, path+".from")
	case fs.HasValue:
		f.kind, f.konst = srcConst, fs.Value
	case fs.Expr != "":
		f.kind, f.scope = srcExpr, sc
		f.prog, f.xprog = c.expression(fs.Expr, fs.KeyPos("expr"), path+".expr", sc, false)
	default:
		f.kind = srcObject
		f.children = c.fields(fs.Fields, sc, path+".fields", label)
	}
	if f.kind == srcObject || f.kind == srcEach {
		if len(fs.Transform) > 0 && f.kind == srcObject {
			c.add(fs.KeyPos("transform"), path+".transform", "a nested object cannot be transformed", "transform its fields instead")
		}
		if fs.HasMap && f.kind == srcObject {
			c.add(fs.KeyPos("map"), path+".map", "a nested object cannot be mapped", "map its fields instead")
		}
		if fs.Lookup != nil {
			c.add(fs.KeyPos("lookup"), path+".lookup", "`lookup` needs a scalar source (`from`, `value` or `expr`)", "")
		}
	}
	if f.kind != srcEach {
		c.pipeline(f, fs, path)
	}
	if fs.HasFallback && !fs.HasMap {
		c.add(fs.KeyPos("fallback"), path+".fallback", "`fallback` only applies to `map`", "add a `map`, or use `default` for missing values")
	}
	if fs.Required && fs.HasDefault && fs.Default != nil {
		c.add(fs.KeyPos("required"), path+".required", "`required` never fails when a non-null `default` is given", "remove one of them")
	}
	if len(c.probs) > n {
		return nil
	}
	return f
}

// pipeline compiles what runs on a present value: transform, map, lookup.
func (c *compiler) pipeline(f *field, fs *FieldSpec, path string) {
	if len(fs.Transform) > 0 && f.kind != srcObject {
		f.transforms = c.transforms(fs.Transform, fs.KeyPos("transform"), path+".transform")
		for f.textSteps < len(f.transforms) && f.transforms[f.textSteps].sfn != nil {
			f.textSteps++
		}
		f.joinFirst = len(f.transforms) > 0 && f.transforms[0].name == "join"
	}
	if fs.HasMap && f.kind != srcObject {
		f.hasMap = true
		f.mapv = make(map[string]any, len(fs.Map))
		for _, e := range fs.Map {
			f.mapv[e.Key] = e.Value
			f.mapKeys = append(f.mapKeys, e.Key)
		}
		f.fallback, f.hasFallback = fs.Fallback, fs.HasFallback
		if len(fs.Map) == 0 && !fs.HasFallback {
			c.add(fs.KeyPos("map"), path+".map", "the map is empty", "list `source value: target value` entries")
		}
	}
	if fs.Lookup != nil && f.kind != srcObject {
		f.lookup = c.lookup(fs.Lookup, path+".lookup")
	}
	f.fastText = f.kind == srcPath && (f.textSteps > 0 || f.hasMap || f.joinFirst)
	f.plain = f.kind == srcPath && len(f.transforms) == 0 && !f.hasMap && f.lookup == nil
}

func (c *compiler) each(f *field, fs *FieldSpec, sc *scope, path, label string) {
	f.kind = srcEach
	f.level, f.slot = sc.level, -1
	pos := fs.KeyPos("each")
	elemSchema := c.checkPath(fs.Each, pos, path+".each", sc, true)
	if strings.HasPrefix(fs.Each, "$") {
		c.add(pos, path+".each", "`each` reads an array from the data, not an envelope attribute", "")
		return
	}
	f.slot = sc.ext.add(fs.Each)
	es := newScope(sc, elemSchema)
	if es.level > c.maxLevel {
		c.maxLevel = es.level
	}
	if es.level > 8 {
		c.add(pos, path+".each", "`each` is nested more than 8 levels deep", "")
		return
	}
	f.eachScope = es
	f.path = fs.Each
	if len(fs.Fields) > 0 {
		if fs.From != "" || fs.Expr != "" || len(fs.Transform) > 0 || fs.HasMap || fs.Lookup != nil {
			c.add(fs.KeyPos("each"), path, "with `each` and `fields`, put `from`, `expr`, `transform`, `map` and `lookup` on the element's fields", "")
			return
		}
		f.elem = &field{kind: srcObject, label: label}
		f.elem.children = c.fields(fs.Fields, es, path+".fields", label+"[]")
		return
	}
	e := &field{label: label + "[]"}
	switch {
	case fs.From != "":
		c.from(e, fs.From, fs.KeyPos("from"), es, path+".from")
	case fs.Expr != "":
		e.kind, e.scope = srcExpr, es
		e.prog, e.xprog = c.expression(fs.Expr, fs.KeyPos("expr"), path+".expr", es, false)
	default:
		e.kind, e.level = srcThis, es.level
	}
	c.pipeline(e, fs, path)
	f.elem = e
}

// from compiles a `from` path in scope sc.
func (c *compiler) from(f *field, p string, pos Pos, sc *scope, path string) {
	p = strings.TrimSpace(p)
	if rest, ok := strings.CutPrefix(p, "$event."); ok {
		for i, a := range eventAttrs {
			if rest == a {
				f.kind, f.event = srcEvent, eventAttr(i)
				return
			}
		}
		c.add(pos, path, "unknown envelope attribute `$event."+rest+"`", hintOr(didYouMean(rest, eventAttrs), "valid: "+quoteList(prefixAll("$event.", eventAttrs), 10)))
		return
	}
	target := sc
	if rest, ok := strings.CutPrefix(p, "$root."); ok {
		target, p = sc.rootScope(), rest
	} else if strings.HasPrefix(p, "$") && p != "$" {
		name := p
		if i := strings.IndexByte(p, '.'); i > 0 {
			name = p[:i]
		}
		c.add(pos, path, "unknown variable `"+name+"`", hintOr(didYouMean(name, []string{"$event", "$root"}), "a path starting with `$` is `$event.<attribute>` or `$root.<path>`; other paths read the event data"))
		return
	}
	if p == "" {
		c.add(pos, path, "empty path", "")
		return
	}
	if n := c.checkPath(p, pos, path, target, false); n != nil && n.typ != "any" {
		f.srcType = n.typ
	}
	f.kind, f.level, f.slot, f.path = srcPath, target.level, target.ext.add(p), p
}

// checkPath checks a plain path against the scope's declared schema, if any,
// and returns the schema of what it points at (for `each`: of the elements).
func (c *compiler) checkPath(p string, pos Pos, path string, sc *scope, wantArray bool) *schemaNode {
	keys, ok := simplePath(p)
	if sc.schema == nil || !ok {
		return nil
	}
	n := sc.schema
	for i, k := range keys {
		if n.typ == "array" && isIntLiteral(k) {
			n = n.elem
		} else if n.typ == "object" && n.kids != nil {
			kid, found := n.kids[k]
			if !found {
				where := "the source"
				if i > 0 {
					where = "`" + strings.Join(keys[:i], ".") + "`"
				}
				c.add(pos, path, "unknown source field `"+strings.Join(keys[:i+1], ".")+"`: "+where+" has no field `"+k+"`",
					hintOr(didYouMean(k, sortedKeys(n.kids)), "known fields: "+quoteList(sortedKeys(n.kids), 12)))
				return nil
			}
			n = kid
		} else {
			return nil
		}
		if n == nil {
			return nil
		}
	}
	if wantArray {
		if n.typ != "array" && n.typ != "any" {
			c.add(pos, path, "`"+p+"` is declared as "+n.typ+", not an array", "")
			return nil
		}
		return n.elem
	}
	return n
}

func hintOr(h, alt string) string {
	if h != "" {
		return h
	}
	return alt
}

func prefixAll(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}

// ---- schema of the source ----

// schemaNode is the declared or inferred shape of a value.
type schemaNode struct {
	typ  string // string, number, integer, boolean, time, object, array, any
	kids map[string]*schemaNode
	elem *schemaNode
}

func (c *compiler) sourceSchema(s *SourceSpec) *schemaNode {
	if s == nil {
		return nil
	}
	if len(s.Fields) > 0 {
		return &schemaNode{typ: "object", kids: declaredKids(s.Fields)}
	}
	if len(s.Sample) > 0 {
		r := gjson.ParseBytes(s.Sample)
		if !r.IsObject() {
			c.add(s.SamplePos, "source.sample", "the sample must be a JSON object (the event's data)", "")
			return nil
		}
		return inferSchema(r, 0)
	}
	return nil
}

func declaredKids(fs []*SourceField) map[string]*schemaNode {
	kids := make(map[string]*schemaNode, len(fs))
	for _, f := range fs {
		n := &schemaNode{typ: f.Type}
		switch f.Type {
		case "object":
			if len(f.Fields) > 0 {
				n.kids = declaredKids(f.Fields)
			}
		case "array":
			switch {
			case len(f.Fields) > 0:
				n.elem = &schemaNode{typ: "object", kids: declaredKids(f.Fields)}
			case f.Elem != "":
				n.elem = &schemaNode{typ: f.Elem}
			}
		}
		kids[f.Name] = n
	}
	return kids
}

func inferSchema(r gjson.Result, depth int) *schemaNode {
	if depth > 32 {
		return &schemaNode{typ: "any"}
	}
	switch r.Type {
	case gjson.String:
		return &schemaNode{typ: "string"}
	case gjson.Number:
		return &schemaNode{typ: "number"}
	case gjson.True, gjson.False:
		return &schemaNode{typ: "boolean"}
	case gjson.JSON:
		if r.IsArray() {
			n := &schemaNode{typ: "array"}
			arr := r.Array()
			if len(arr) > 0 {
				n.elem = inferSchema(arr[0], depth+1)
			}
			return n
		}
		n := &schemaNode{typ: "object", kids: map[string]*schemaNode{}}
		r.ForEach(func(k, v gjson.Result) bool {
			n.kids[k.Str] = inferSchema(v, depth+1)
			return true
		})
		return n
	}
	return &schemaNode{typ: "any"} // null: unknown
}

// ---- map keys ----

// mapKey renders a source value as the text a `map` is keyed by; ok is false
// for values that cannot be keys (objects, arrays).
func mapKey(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprint(v)
}
