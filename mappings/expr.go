package mappings

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"
)

// eventEnv is `$event` in expressions.
type eventEnv struct {
	ID      string    `expr:"id"`
	Type    string    `expr:"type"`
	Source  string    `expr:"source"`
	Subject string    `expr:"subject"`
	Time    time.Time `expr:"time"`
}

// exprVar is one variable of an expression env: a data path read in some
// scope, converted to a declared type.
type exprVar struct {
	name  string
	level int
	slot  int
	typ   string // source type: string, number, ... or "" (any)
}

// hubFunc is one of the hub's expression functions: its implementation
// (called by the expr VM and, with the same arguments, by the native
// evaluator) and its signatures for the type checker.
type hubFunc struct {
	name  string
	fn    func(p ...any) (any, error)
	types []any
}

var hubFuncs = []hubFunc{
	{"sha256", func(p ...any) (any, error) {
		s, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		return sha256Hex(s), nil
	}, []any{new(func(string) string)}},
	{"e164", func(p ...any) (any, error) {
		s, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		region := ""
		if len(p) > 1 {
			if region, err = toText(p[1]); err != nil {
				return nil, err
			}
			if _, err := callingCode(region); err != nil {
				return nil, err
			}
		}
		return toE164(nil, s, region)
	}, []any{new(func(string) string), new(func(string, string) string)}},
	{"truncate", func(p ...any) (any, error) {
		s, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		n, err := toFloat(p[1])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("truncate: length must be a whole number ≥ 0")
		}
		return truncateRunes(s, int(n)), nil
	}, []any{new(func(string, int) string)}},
	{"digits", func(p ...any) (any, error) {
		s, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		return digitsText(nil, s), nil
	}, []any{new(func(string) string)}},
	{"roundTo", func(p ...any) (any, error) {
		f, err := toFloat(p[0])
		if err != nil {
			return nil, err
		}
		n, err := toFloat(p[1])
		if err != nil || n < 0 || n > 15 {
			return nil, fmt.Errorf("roundTo: decimals must be between 0 and 15")
		}
		return roundTo(f, int(n)), nil
	}, []any{new(func(float64, int) float64)}},
	{"formatNumber", func(p ...any) (any, error) {
		f, err := toFloat(p[0])
		if err != nil {
			return nil, err
		}
		n, err := toFloat(p[1])
		if err != nil || n < 0 || n > 15 {
			return nil, fmt.Errorf("formatNumber: decimals must be between 0 and 15")
		}
		sep := ""
		if len(p) > 2 {
			if sep, err = toText(p[2]); err != nil {
				return nil, err
			}
		}
		return formatNumber(f, int(n), sep), nil
	}, []any{new(func(float64, int) string), new(func(float64, int, string) string)}},
	{"formatTime", func(p ...any) (any, error) {
		t, err := toTime(p[0], time.UTC)
		if err != nil {
			return nil, err
		}
		layout, err := toText(p[1])
		if err != nil {
			return nil, err
		}
		loc := time.UTC
		if len(p) > 2 {
			zone, err := toText(p[2])
			if err != nil {
				return nil, err
			}
			if loc, err = loadZone(zone); err != nil {
				return nil, err
			}
		}
		return t.In(loc).Format(namedLayout(layout)), nil
	}, []any{new(func(time.Time, string) string), new(func(time.Time, string, string) string)}},
	{"parseTime", func(p ...any) (any, error) {
		s, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		layout, err := toText(p[1])
		if err != nil {
			return nil, err
		}
		loc := time.UTC
		if len(p) > 2 {
			zone, err := toText(p[2])
			if err != nil {
				return nil, err
			}
			if loc, err = loadZone(zone); err != nil {
				return nil, err
			}
		}
		t, err := time.ParseInLocation(namedLayout(layout), s, loc)
		if err != nil {
			return nil, fmt.Errorf("parseTime: %q does not match the layout %q", s, layout)
		}
		return t, nil
	}, []any{new(func(string, string) time.Time), new(func(string, string, string) time.Time)}},
	{"toTime", func(p ...any) (any, error) {
		return toTime(p[0], time.UTC)
	}, []any{new(func(any) time.Time)}},
	{"sprintf", func(p ...any) (any, error) {
		f, err := toText(p[0])
		if err != nil {
			return nil, err
		}
		return fmt.Sprintf(f, p[1:]...), nil
	}, []any{new(func(string, ...any) string)}},
	{"coalesce", func(p ...any) (any, error) {
		for _, v := range p {
			if v == nil {
				continue
			}
			if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
				continue
			}
			return v, nil
		}
		return nil, nil
	}, nil},
}

// hubFuncIndex finds a hub function by name.
var hubFuncIndex = func() map[string]*hubFunc {
	idx := make(map[string]*hubFunc, len(hubFuncs))
	for i := range hubFuncs {
		idx[hubFuncs[i].name] = &hubFuncs[i]
	}
	return idx
}()

// exprFunctions are the hub's functions available in every expression, on
// top of expr-lang's built-ins.
var exprFunctions = func() []expr.Option {
	opts := make([]expr.Option, len(hubFuncs))
	for i, f := range hubFuncs {
		opts[i] = expr.Function(f.name, f.fn, f.types...)
	}
	return opts
}()

var exprFunctionNames = []string{"sha256", "e164", "truncate", "digits", "roundTo", "formatNumber", "formatTime", "parseTime", "toTime", "sprintf", "coalesce"}

// ExprFunctionNames lists the hub's own expression functions (expr-lang's
// built-ins come on top).
func ExprFunctionNames() []string {
	out := append([]string(nil), exprFunctionNames...)
	sort.Strings(out)
	return out
}

func allFunctionNames() []string {
	return append(append([]string(nil), exprFunctionNames...), builtin.Names...)
}

// chainOf returns the root identifier and member names of `a.b["c"][0]`;
// ok is false for anything else (method calls, computed members, pointers).
func chainOf(n ast.Node) (root string, comps []string, ok bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value, nil, true
	case *ast.MemberNode:
		if x.Method {
			return "", nil, false
		}
		var comp string
		switch p := x.Property.(type) {
		case *ast.StringNode:
			comp = p.Value
		case *ast.IntegerNode:
			if p.Value < 0 {
				return "", nil, false
			}
			comp = strconv.Itoa(p.Value)
		default:
			return "", nil, false
		}
		root, comps, ok = chainOf(x.Node)
		if !ok {
			return "", nil, false
		}
		return root, append(comps, comp), true
	}
	return "", nil, false
}

// canonical names a chain in the env: a.b["odd key"][0] → a.b["odd key"].0 is
// avoided: numbers render as [0].
func canonical(root string, comps []string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, c := range comps {
		if isIdent(c) {
			b.WriteByte('.')
			b.WriteString(c)
		} else if isIntLiteral(c) {
			b.WriteString("[" + c + "]")
		} else {
			b.WriteString("[" + strconv.Quote(c) + "]")
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r > 127 || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// gjsonPath joins member names into a gjson path, escaping gjson syntax.
func gjsonPath(comps []string) string {
	if len(comps) == 0 {
		return "@this"
	}
	parts := make([]string, len(comps))
	for i, c := range comps {
		parts[i] = gjson.Escape(c)
	}
	return strings.Join(parts, ".")
}

type collected struct {
	node  ast.Node
	root  string
	comps []string
}

// collector finds, in one post-order walk, the maximal member chains, the
// names bound by `let`, and calls to functions.
type collector struct {
	chains map[ast.Node]collected
	order  []ast.Node
	lets   map[string]bool
	calls  []*ast.IdentifierNode
}

func (c *collector) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		c.chains[n] = collected{node: n, root: n.Value}
		c.order = append(c.order, n)
	case *ast.MemberNode:
		if root, comps, ok := chainOf(n); ok {
			delete(c.chains, n.Node)
			c.chains[n] = collected{node: n, root: root, comps: comps}
			c.order = append(c.order, n)
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			delete(c.chains, id)
			c.calls = append(c.calls, id)
		}
	case *ast.VariableDeclaratorNode:
		c.lets[n.Name] = true
	}
}

// rootLoc is where a member chain starts (its root identifier).
func rootLoc(n ast.Node) file.Location {
	for {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return n.Location()
		}
		n = m.Node
	}
}

// chainPatcher replaces each data chain by one identifier, so a path is read
// once, nil-safely, from the record's extracted values.
type chainPatcher struct{ names map[string]bool }

func (p *chainPatcher) Visit(node *ast.Node) {
	if m, ok := (*node).(*ast.MemberNode); ok {
		if root, comps, ok := chainOf(m); ok {
			if name := canonical(root, comps); p.names[name] {
				ast.Patch(node, &ast.IdentifierNode{Value: name})
			}
		}
	}
}

// expression compiles src in scope sc. Data fields are variables
// (`first_name`, `address.city`, `$this["odd key"]`, `$root.x` from inside
// `each`), `$event` holds the envelope.
//
// It also returns the expression compiled for the native evaluator (nil
// when it needs the VM).
func (c *compiler) expression(src string, pos Pos, path string, sc *scope, asBool bool) (*vm.Program, *xnode) {
	cfg := conf.CreateNew()
	for _, o := range exprFunctions {
		o(cfg)
	}
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		c.exprError(err, src, pos, path)
		return nil, nil
	}
	col := &collector{chains: map[ast.Node]collected{}, lets: map[string]bool{}}
	ast.Walk(&tree.Node, col)

	bad := false
	for _, id := range col.calls {
		if !contains(exprFunctionNames, id.Value) {
			hint := didYouMean(id.Value, allFunctionNames())
			if hint == "" {
				hint = "the hub's functions: " + quoteList(ExprFunctionNames(), 20) + ", plus expr-lang's built-ins"
			}
			c.add(exprPos(pos, src, id.Location()), path, "unknown function `"+id.Value+"`", hint)
			bad = true
		}
	}
	env := types.Map{"$event": types.TypeOf(&eventEnv{})}
	names := map[string]bool{}
	for _, n := range col.order {
		ch, ok := col.chains[n]
		if !ok || col.lets[ch.root] {
			continue
		}
		name := canonical(ch.root, ch.comps)
		if names[name] {
			continue
		}
		target, comps := sc, append([]string{ch.root}, ch.comps...)
		switch ch.root {
		case "$event":
			if len(ch.comps) > 0 && !contains(eventAttrs, ch.comps[0]) {
				c.add(exprPos(pos, src, rootLoc(n)), path, "unknown envelope attribute `$event."+ch.comps[0]+"`",
					hintOr(didYouMean(ch.comps[0], eventAttrs), "valid: "+quoteList(prefixAll("$event.", eventAttrs), 10)))
				bad = true
			}
			continue
		case "$env":
			c.add(exprPos(pos, src, rootLoc(n)), path, "`$env` is not available in mappings", "read data fields by name, the envelope through `$event`")
			bad = true
			continue
		case "$root":
			target, comps = sc.rootScope(), ch.comps
		case "$this":
			comps = ch.comps
		default:
			if strings.HasPrefix(ch.root, "$") {
				c.add(exprPos(pos, src, rootLoc(n)), path, "unknown variable `"+ch.root+"`",
					hintOr(didYouMean(ch.root, []string{"$event", "$root", "$this"}), "variables starting with `$` are $event, $root and $this"))
				bad = true
				continue
			}
		}
		typ, known := c.varType(target, comps)
		if !known {
			c.unknownVar(target, comps, exprPos(pos, src, rootLoc(n)), path)
			bad = true
			continue
		}
		names[name] = true
		slot := target.ext.add(gjsonPath(comps))
		sc.bind(exprVar{name: name, level: target.level, slot: slot, typ: typ})
		env[name] = typeOf(typ)
	}
	if bad {
		return nil, nil
	}
	opts := append(append([]expr.Option{}, exprFunctions...), expr.Env(env), expr.Patch(&chainPatcher{names: names}))
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		c.exprError(err, src, pos, path)
		return nil, nil
	}
	return prog, nativeExpr(prog.Node(), sc)
}

func (s *scope) bind(v exprVar) {
	if _, ok := s.varIdx[v.name]; ok {
		return
	}
	s.varIdx[v.name] = len(s.vars)
	s.vars = append(s.vars, v)
}

// varType returns the declared type of a path in target's schema; known is
// false when the schema is declared and has no such field.
func (c *compiler) varType(target *scope, comps []string) (typ string, known bool) {
	n := target.schema
	if n == nil {
		return "", true
	}
	for _, k := range comps {
		switch {
		case n.typ == "array" && isIntLiteral(k):
			n = n.elem
		case n.typ == "object" && n.kids != nil:
			kid, ok := n.kids[k]
			if !ok {
				return "", false
			}
			n = kid
		default:
			return "", true
		}
		if n == nil {
			return "", true
		}
	}
	if n.typ == "any" {
		return "", true
	}
	return n.typ, true
}

func (c *compiler) unknownVar(target *scope, comps []string, pos Pos, path string) {
	n := target.schema
	for i, k := range comps {
		if n.typ == "array" && isIntLiteral(k) {
			n = n.elem
			continue
		}
		kid, ok := n.kids[k]
		if !ok {
			where := "the source"
			if i > 0 {
				where = "`" + strings.Join(comps[:i], ".") + "`"
			}
			var cands []string
			cands = append(cands, sortedKeys(n.kids)...)
			hint := didYouMean(k, cands)
			if hint == "" && i == 0 {
				hint = didYouMean(k, allFunctionNames())
				if hint != "" {
					hint = strings.TrimSuffix(hint, "?") + "() (a function)?"
				}
			}
			c.add(pos, path, "unknown source field `"+strings.Join(comps[:i+1], ".")+"`: "+where+" has no field `"+k+"`",
				hintOr(hint, "known fields: "+quoteList(sortedKeys(n.kids), 12)))
			return
		}
		n = kid
	}
}

func typeOf(typ string) types.Type {
	switch typ {
	case "string":
		return types.String
	case "number":
		return types.Float64
	case "integer":
		return types.Int
	case "boolean":
		return types.Bool
	case "time":
		return types.TypeOf(time.Time{})
	case "object":
		return types.TypeOf(map[string]any{})
	case "array":
		return types.TypeOf([]any{})
	}
	return types.Any
}

// varValue converts an extracted value to the variable's declared type.
func varValue(r gjson.Result, typ string) (any, error) {
	if !exists(r) || r.Type == gjson.Null {
		return nil, nil
	}
	switch typ {
	case "string":
		switch r.Type {
		case gjson.String:
			return r.Str, nil
		case gjson.Number, gjson.True, gjson.False:
			return r.Raw, nil
		}
	case "number":
		switch r.Type {
		case gjson.Number:
			return r.Num, nil
		case gjson.String:
			return toFloat(r.Str)
		}
	case "integer":
		switch r.Type {
		case gjson.Number:
			if r.Num != math.Trunc(r.Num) || math.Abs(r.Num) > 1<<53 {
				return nil, fmt.Errorf("%s is not a whole number", r.Raw)
			}
			return int(r.Num), nil
		case gjson.String:
			i, err := strconv.Atoi(strings.TrimSpace(r.Str))
			if err != nil {
				return nil, fmt.Errorf("%q is not a whole number", r.Str)
			}
			return i, nil
		}
	case "boolean":
		switch r.Type {
		case gjson.True, gjson.False:
			return r.Type == gjson.True, nil
		case gjson.String:
			return toBool(r.Str)
		}
	case "time":
		return toTime(resultValue(r), time.UTC)
	case "object":
		if r.IsObject() {
			return resultValue(r), nil
		}
	case "array":
		if r.IsArray() {
			return resultValue(r), nil
		}
	default:
		return resultValue(r), nil
	}
	return nil, fmt.Errorf("expected %s, got %s", article(typ), shortJSON(r.Raw))
}

func article(typ string) string {
	switch typ {
	case "integer", "object", "array":
		return "an " + typ
	case "time":
		return "a time"
	}
	return "a " + typ
}

func shortJSON(raw string) string {
	if len(raw) > 40 {
		return raw[:37] + "..."
	}
	return raw
}

// exprPos places a position inside an expression (expr-lang's location)
// in the YAML file.
func exprPos(pos Pos, src string, loc file.Location) Pos {
	if pos.Line == 0 {
		return pos
	}
	line, col := 0, 0
	for i, r := range src {
		if i >= loc.From {
			break
		}
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
	}
	if line == 0 {
		return Pos{Line: pos.Line, Col: pos.Col + col}
	}
	return Pos{Line: pos.Line + line, Col: col + 1}
}

func (c *compiler) exprError(err error, src string, pos Pos, path string) {
	var fe *file.Error
	msg := err.Error()
	p := pos
	if errors.As(err, &fe) {
		msg = fe.Message
		p = exprPos(pos, src, fe.Location)
	}
	hint := ""
	if strings.HasPrefix(msg, "unknown name ") {
		name := strings.TrimPrefix(msg, "unknown name ")
		hint = didYouMean(name, allFunctionNames())
	}
	c.add(p, path, "expression: "+msg, hint)
}

// exprResult converts an expression's result to a JSON-compatible value.
func exprResult(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int64, float64, time.Time:
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, fmt.Errorf("result %v is not a JSON number", f)
		}
		return v, nil
	case int:
		return int64(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			j, err := exprResult(e)
			if err != nil {
				return nil, err
			}
			out[k] = j
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := exprResult(e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case time.Duration:
		return x.String(), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return float64(u), nil
		}
		return int64(u), nil
	case reflect.Float32:
		return exprResult(rv.Float())
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			j, err := exprResult(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			out := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				j, err := exprResult(it.Value().Interface())
				if err != nil {
					return nil, err
				}
				out[it.Key().String()] = j
			}
			return out, nil
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return exprResult(rv.Elem().Interface())
	}
	return nil, fmt.Errorf("result of type %T is not a JSON value", v)
}
