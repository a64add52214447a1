package mappings

import (
	"math"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/tidwall/gjson"
)

// The native evaluator runs the common, simple expressions (paths,
// constants, comparisons, arithmetic, `??`, `&&`, conditionals, string
// slices, upper/lower/trim/len and the hub's functions) straight on the
// record's typed values, without boxing them into an env map and without the
// expr VM. It is a fast path only: it reads the type-checked AST of the
// compiled program, follows expr-lang's runtime rules for the value types it
// knows, and gives up ("bails") on anything else (a nil operand, a type mix
// it does not handle, a function error), in which case the expr VM runs the
// expression and gives the result or the error. Expressions are pure, so
// running the VM after a bail is safe. A differential test checks the two
// agree.

// xkind is the type of an xval.
type xkind uint8

const (
	xNil   xkind = iota
	xStr         // string
	xInt         // int: expr-lang's integer arithmetic result, declared integers
	xInt64       // int64: whole numbers read from untyped data
	xFloat       // float64
	xBool        // bool
	xAny         // anything else (a time, an object, an array), boxed
)

// xval is an unboxed expression value.
type xval struct {
	k xkind
	b bool
	s string
	i int64 // xInt, xInt64
	f float64
	a any // xAny
}

// box returns the value as the expr VM would hold it.
func (v xval) box() any {
	switch v.k {
	case xStr:
		return v.s
	case xInt:
		return int(v.i)
	case xInt64:
		return v.i
	case xFloat:
		return v.f
	case xBool:
		return v.b
	case xAny:
		return v.a
	}
	return nil
}

// unbox is the inverse of box.
func unbox(a any) xval {
	switch x := a.(type) {
	case nil:
		return xval{}
	case string:
		return xval{k: xStr, s: x}
	case int:
		return xval{k: xInt, i: int64(x)}
	case int64:
		return xval{k: xInt64, i: x}
	case float64:
		return xval{k: xFloat, f: x}
	case bool:
		return xval{k: xBool, b: x}
	}
	return xval{k: xAny, a: a}
}

func (v xval) isInt() bool { return v.k == xInt || v.k == xInt64 }
func (v xval) isNum() bool { return v.k == xInt || v.k == xInt64 || v.k == xFloat }

// num is the value as a float64 (numbers only).
func (v xval) num() float64 {
	if v.k == xFloat {
		return v.f
	}
	return float64(v.i)
}

// varXVal is varValue without boxing: the same conversions, the same errors.
func varXVal(r *gjson.Result, typ string) (xval, error) {
	if !exists(*r) || r.Type == gjson.Null {
		return xval{}, nil
	}
	switch typ {
	case "string":
		switch r.Type {
		case gjson.String:
			return xval{k: xStr, s: r.Str}, nil
		case gjson.Number, gjson.True, gjson.False:
			return xval{k: xStr, s: r.Raw}, nil
		}
	case "number":
		if r.Type == gjson.Number {
			return xval{k: xFloat, f: r.Num}, nil
		}
	case "integer":
		if r.Type == gjson.Number && r.Num == math.Trunc(r.Num) && math.Abs(r.Num) <= 1<<53 {
			return xval{k: xInt, i: int64(int(r.Num))}, nil
		}
	case "boolean":
		switch r.Type {
		case gjson.True, gjson.False:
			return xval{k: xBool, b: r.Type == gjson.True}, nil
		}
	case "":
		switch r.Type {
		case gjson.String:
			return xval{k: xStr, s: r.Str}, nil
		case gjson.True, gjson.False:
			return xval{k: xBool, b: r.Type == gjson.True}, nil
		}
	}
	// The rest (conversions from text, times, composites, mismatches) as
	// varValue does it.
	v, err := varValue(*r, typ)
	if err != nil {
		return xval{}, err
	}
	return unbox(v), nil
}

// xop is what an xnode does.
type xop uint8

const (
	opConst xop = iota
	opVar
	opEvent // $event.<string attribute>
	opEventTime
	opNot
	opNeg
	opPos
	opAnd
	opOr
	opCoalesce
	opCond
	opEq
	opNe
	opLt
	opGt
	opLe
	opGe
	opAdd
	opConcat // a + b + c + ...: one allocation when all are text
	opSub
	opMul
	opDiv
	opMod
	opPow
	opSlice
	opUpper
	opLower
	opTrim
	opTrim2
	opLen
	opRoundTo
	opCall // a hub function, with boxed arguments
)

// xnode is a compiled expression node for the native evaluator.
type xnode struct {
	op   xop
	v    xval     // opConst
	idx  int      // opVar: index in the scope's vars; opEvent: the attribute
	kids []*xnode // operands, arguments
	fn   *hubFunc // opCall
	to   bool     // opSlice: kids[2] is the upper bound (else: the length)
	from bool     // opSlice: kids[1] is the lower bound (else: 0)
}

// nativeExpr compiles the checked AST of an expression for the native
// evaluator; nil when it uses anything the evaluator does not know.
func nativeExpr(node ast.Node, sc *scope) *xnode {
	c := nativeCompiler{sc: sc}
	n := c.node(node)
	if c.bad {
		return nil
	}
	return n
}

type nativeCompiler struct {
	sc  *scope
	bad bool
}

func (c *nativeCompiler) fail() *xnode {
	c.bad = true
	return nil
}

func (c *nativeCompiler) nodes(ns []ast.Node) []*xnode {
	out := make([]*xnode, len(ns))
	for i, n := range ns {
		out[i] = c.node(n)
	}
	return out
}

func (c *nativeCompiler) node(node ast.Node) *xnode {
	if c.bad || node == nil {
		return c.fail()
	}
	switch n := node.(type) {
	case *ast.NilNode:
		return &xnode{op: opConst}
	case *ast.BoolNode:
		return &xnode{op: opConst, v: xval{k: xBool, b: n.Value}}
	case *ast.StringNode:
		return &xnode{op: opConst, v: xval{k: xStr, s: n.Value}}
	case *ast.IntegerNode:
		t := n.Type()
		switch {
		case t == nil || t.Kind() == reflect.Int:
			return &xnode{op: opConst, v: xval{k: xInt, i: int64(n.Value)}}
		case t.Kind() == reflect.Int64:
			return &xnode{op: opConst, v: xval{k: xInt64, i: int64(n.Value)}}
		case t.Kind() == reflect.Float64:
			return &xnode{op: opConst, v: xval{k: xFloat, f: float64(n.Value)}}
		case t.Kind() == reflect.Interface:
			return &xnode{op: opConst, v: xval{k: xInt, i: int64(n.Value)}}
		}
		return c.fail()
	case *ast.FloatNode:
		if t := n.Type(); t != nil && t.Kind() == reflect.Float32 {
			return c.fail()
		}
		return &xnode{op: opConst, v: xval{k: xFloat, f: n.Value}}
	case *ast.ConstantNode:
		switch n.Value.(type) {
		case nil, string, int, int64, float64, bool:
			return &xnode{op: opConst, v: unbox(n.Value)}
		}
		return c.fail()
	case *ast.IdentifierNode:
		if i, ok := c.sc.varIdx[n.Value]; ok {
			return &xnode{op: opVar, idx: i}
		}
		return c.fail()
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		prop, ok2 := n.Property.(*ast.StringNode)
		if !ok || !ok2 || id.Value != "$event" || n.Method {
			return c.fail()
		}
		switch prop.Value {
		case "id":
			return &xnode{op: opEvent, idx: int(evID)}
		case "type":
			return &xnode{op: opEvent, idx: int(evType)}
		case "source":
			return &xnode{op: opEvent, idx: int(evSource)}
		case "subject":
			return &xnode{op: opEvent, idx: int(evSubject)}
		case "time":
			return &xnode{op: opEventTime}
		}
		return c.fail()
	case *ast.ChainNode:
		if _, ok := n.Node.(*ast.IdentifierNode); ok {
			return c.node(n.Node)
		}
		return c.fail()
	case *ast.UnaryNode:
		x := c.node(n.Node)
		switch n.Operator {
		case "!", "not":
			return &xnode{op: opNot, kids: []*xnode{x}}
		case "-":
			return &xnode{op: opNeg, kids: []*xnode{x}}
		case "+":
			return &xnode{op: opPos, kids: []*xnode{x}}
		}
		return c.fail()
	case *ast.BinaryNode:
		if n.Operator == "+" {
			return c.concat(n)
		}
		ops := map[string]xop{"&&": opAnd, "and": opAnd, "||": opOr, "or": opOr, "??": opCoalesce,
			"==": opEq, "!=": opNe, "<": opLt, ">": opGt, "<=": opLe, ">=": opGe,
			"-": opSub, "*": opMul, "/": opDiv, "%": opMod, "**": opPow, "^": opPow}
		op, ok := ops[n.Operator]
		if !ok {
			return c.fail()
		}
		return &xnode{op: op, kids: []*xnode{c.node(n.Left), c.node(n.Right)}}
	case *ast.ConditionalNode:
		return &xnode{op: opCond, kids: []*xnode{c.node(n.Cond), c.node(n.Exp1), c.node(n.Exp2)}}
	case *ast.SliceNode:
		x := &xnode{op: opSlice, kids: []*xnode{c.node(n.Node), nil, nil}}
		if n.From != nil {
			x.from, x.kids[1] = true, c.node(n.From)
		}
		if n.To != nil {
			x.to, x.kids[2] = true, c.node(n.To)
		}
		return x
	case *ast.BuiltinNode:
		args := c.nodes(n.Arguments)
		switch {
		case n.Name == "upper" && len(args) == 1:
			return &xnode{op: opUpper, kids: args}
		case n.Name == "lower" && len(args) == 1:
			return &xnode{op: opLower, kids: args}
		case n.Name == "trim" && len(args) == 1:
			return &xnode{op: opTrim, kids: args}
		case n.Name == "trim" && len(args) == 2:
			return &xnode{op: opTrim2, kids: args}
		case n.Name == "len" && len(args) == 1:
			return &xnode{op: opLen, kids: args}
		}
		return c.fail()
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return c.fail()
		}
		f := hubFuncIndex[id.Value]
		if f == nil || len(n.Arguments) > maxCallArgs {
			return c.fail()
		}
		args := c.nodes(n.Arguments)
		if f.name == "roundTo" && len(args) == 2 {
			return &xnode{op: opRoundTo, kids: args}
		}
		return &xnode{op: opCall, fn: f, kids: args}
	}
	return c.fail()
}

// maxCallArgs bounds the arguments of a natively called function.
const maxCallArgs = 8

// concat compiles a chain of `+` (left-associative) as one node.
func (c *nativeCompiler) concat(n *ast.BinaryNode) *xnode {
	var operands []ast.Node
	var walk func(ast.Node)
	walk = func(x ast.Node) {
		if b, ok := x.(*ast.BinaryNode); ok && b.Operator == "+" {
			walk(b.Left)
			operands = append(operands, b.Right)
			return
		}
		operands = append(operands, x)
	}
	walk(n)
	if len(operands) == 2 {
		return &xnode{op: opAdd, kids: c.nodes(operands)}
	}
	return &xnode{op: opConcat, kids: c.nodes(operands)}
}

// xeval evaluates n; ok is false when the evaluator gives up (the VM then
// runs the expression).
func (st *state) xeval(n *xnode, vars []xval) (xval, bool) {
	switch n.op {
	case opConst:
		return n.v, true
	case opVar:
		return vars[n.idx], true
	case opEvent:
		switch eventAttr(n.idx) {
		case evID:
			return xval{k: xStr, s: st.ev.ID}, true
		case evType:
			return xval{k: xStr, s: st.ev.Type}, true
		case evSource:
			return xval{k: xStr, s: st.ev.Source}, true
		case evSubject:
			return xval{k: xStr, s: st.ev.Subject}, true
		}
		return xval{}, false
	case opEventTime:
		return xval{k: xAny, a: st.ev.Time}, true
	case opNot:
		x, ok := st.xeval(n.kids[0], vars)
		if !ok || x.k != xBool {
			return xval{}, false
		}
		return xval{k: xBool, b: !x.b}, true
	case opNeg:
		x, ok := st.xeval(n.kids[0], vars)
		if !ok {
			return xval{}, false
		}
		switch x.k {
		case xInt, xInt64:
			x.i = -x.i
			return x, true
		case xFloat:
			x.f = -x.f
			return x, true
		}
		return xval{}, false
	case opPos:
		return st.xeval(n.kids[0], vars)
	case opAnd, opOr:
		l, ok := st.xeval(n.kids[0], vars)
		if !ok || l.k != xBool {
			return xval{}, false
		}
		if l.b == (n.op == opOr) {
			return l, true
		}
		return st.xeval(n.kids[1], vars)
	case opCoalesce:
		l, ok := st.xeval(n.kids[0], vars)
		if !ok {
			return xval{}, false
		}
		if l.k != xNil && (l.k != xAny || !runtime.IsNil(l.a)) {
			return l, true
		}
		return st.xeval(n.kids[1], vars)
	case opCond:
		c, ok := st.xeval(n.kids[0], vars)
		if !ok || c.k != xBool {
			return xval{}, false
		}
		if c.b {
			return st.xeval(n.kids[1], vars)
		}
		return st.xeval(n.kids[2], vars)
	case opConcat:
		return st.concat(n, vars)
	case opSlice:
		return st.slice(n, vars)
	case opUpper, opLower, opTrim, opLen:
		x, ok := st.xeval(n.kids[0], vars)
		if !ok || x.k != xStr {
			return xval{}, false
		}
		switch n.op {
		case opUpper:
			return xval{k: xStr, s: upperText(&st.mem, x.s)}, true
		case opLower:
			return xval{k: xStr, s: lowerText(&st.mem, x.s)}, true
		case opTrim:
			return xval{k: xStr, s: strings.TrimSpace(x.s)}, true
		}
		return xval{k: xInt, i: int64(utf8.RuneCountInString(x.s))}, true
	case opTrim2:
		x, ok := st.xeval(n.kids[0], vars)
		y, ok2 := st.xeval(n.kids[1], vars)
		if !ok || !ok2 || x.k != xStr || y.k != xStr {
			return xval{}, false
		}
		return xval{k: xStr, s: strings.Trim(x.s, y.s)}, true
	case opRoundTo:
		x, ok := st.xeval(n.kids[0], vars)
		y, ok2 := st.xeval(n.kids[1], vars)
		if !ok || !ok2 {
			return xval{}, false
		}
		f, ok := xToFloat(x)
		d, ok2 := xToFloat(y)
		if !ok || !ok2 || d < 0 || d > 15 {
			return xval{}, false
		}
		return xval{k: xFloat, f: roundTo(f, int(d))}, true
	case opCall:
		return st.call(n, vars)
	}
	l, ok := st.xeval(n.kids[0], vars)
	if !ok {
		return xval{}, false
	}
	r, ok := st.xeval(n.kids[1], vars)
	if !ok {
		return xval{}, false
	}
	return binary(n.op, l, r)
}

// binary applies a comparison or an arithmetic operator the way expr-lang's
// runtime does for these types: every integer type collapses to int, an
// integer with a float is a float, `/` is always a float division.
func binary(op xop, l, r xval) (xval, bool) {
	switch op {
	case opEq, opNe:
		var eq bool
		switch {
		case l.isInt() && r.isInt():
			eq = l.i == r.i
		case l.isNum() && r.isNum():
			eq = l.num() == r.num()
		case l.k == xStr && r.k == xStr:
			eq = l.s == r.s
		case l.k == xBool && r.k == xBool:
			eq = l.b == r.b
		default:
			return xval{}, false
		}
		return xval{k: xBool, b: eq == (op == opEq)}, true
	case opLt, opGt, opLe, opGe:
		var c int
		switch {
		case l.isInt() && r.isInt():
			c = cmp3(l.i < r.i, l.i > r.i)
		case l.isNum() && r.isNum():
			a, b := l.num(), r.num()
			if math.IsNaN(a) || math.IsNaN(b) {
				return xval{k: xBool, b: false}, true
			}
			c = cmp3(a < b, a > b)
		case l.k == xStr && r.k == xStr:
			c = strings.Compare(l.s, r.s)
		default:
			return xval{}, false
		}
		var b bool
		switch op {
		case opLt:
			b = c < 0
		case opGt:
			b = c > 0
		case opLe:
			b = c <= 0
		default:
			b = c >= 0
		}
		return xval{k: xBool, b: b}, true
	case opAdd:
		if l.k == xStr && r.k == xStr {
			return xval{k: xStr, s: l.s + r.s}, true
		}
		fallthrough
	case opSub, opMul:
		switch {
		case l.isInt() && r.isInt():
			a, b := int(l.i), int(r.i)
			switch op {
			case opAdd:
				return xval{k: xInt, i: int64(a + b)}, true
			case opSub:
				return xval{k: xInt, i: int64(a - b)}, true
			}
			return xval{k: xInt, i: int64(a * b)}, true
		case l.isNum() && r.isNum():
			a, b := l.num(), r.num()
			switch op {
			case opAdd:
				return xval{k: xFloat, f: a + b}, true
			case opSub:
				return xval{k: xFloat, f: a - b}, true
			}
			return xval{k: xFloat, f: a * b}, true
		}
	case opDiv:
		if l.isNum() && r.isNum() {
			return xval{k: xFloat, f: l.num() / r.num()}, true
		}
	case opMod:
		if l.isInt() && r.isInt() && r.i != 0 {
			return xval{k: xInt, i: int64(int(l.i) % int(r.i))}, true
		}
	case opPow:
		if l.isNum() && r.isNum() {
			return xval{k: xFloat, f: math.Pow(l.num(), r.num())}, true
		}
	}
	return xval{}, false
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

// concat evaluates a + b + c + ...: text is joined in the record's memory;
// anything else is added pair by pair, left to right.
func (st *state) concat(n *xnode, vars []xval) (xval, bool) {
	var buf [8]xval
	vals := buf[:0]
	size, text := 0, true
	for _, k := range n.kids {
		v, ok := st.xeval(k, vars)
		if !ok {
			return xval{}, false
		}
		if v.k != xStr {
			text = false
		}
		size += len(v.s)
		vals = append(vals, v)
	}
	if !text {
		acc := vals[0]
		for _, v := range vals[1:] {
			var ok bool
			if acc, ok = binary(opAdd, acc, v); !ok {
				return xval{}, false
			}
		}
		return acc, true
	}
	b := st.mem.textBuf(size)
	for _, v := range vals {
		b = append(b, v.s...)
	}
	return xval{k: xStr, s: st.mem.textDone(b)}, true
}

// slice is expr-lang's runtime.Slice on text (byte offsets).
func (st *state) slice(n *xnode, vars []xval) (xval, bool) {
	x, ok := st.xeval(n.kids[0], vars)
	if !ok || x.k != xStr {
		return xval{}, false
	}
	length := len(x.s)
	a, b := 0, length
	if n.to {
		v, ok := st.xeval(n.kids[2], vars)
		if b, ok = xToInt(v, ok); !ok {
			return xval{}, false
		}
	}
	if n.from {
		v, ok := st.xeval(n.kids[1], vars)
		if a, ok = xToInt(v, ok); !ok {
			return xval{}, false
		}
	}
	if a < 0 {
		a = length + a
	}
	if a < 0 {
		a = 0
	}
	if b < 0 {
		b = length + b
	}
	if b < 0 {
		b = 0
	}
	if b > length {
		b = length
	}
	if a > b {
		a = b
	}
	return xval{k: xStr, s: x.s[a:b]}, true
}

// xToInt is runtime.ToInt.
func xToInt(v xval, ok bool) (int, bool) {
	if !ok {
		return 0, false
	}
	switch v.k {
	case xInt, xInt64:
		return int(v.i), true
	case xFloat:
		return int(v.f), true
	}
	return 0, false
}

// xToFloat is toFloat for the values it converts without an error.
func xToFloat(v xval) (float64, bool) {
	switch v.k {
	case xFloat:
		return v.f, true
	case xInt, xInt64:
		return float64(v.i), true
	case xBool:
		if v.b {
			return 1, true
		}
		return 0, true
	case xStr:
		f, err := toFloat(v.s)
		return f, err == nil
	}
	return 0, false
}

// call runs a hub function with the arguments the VM would pass. A panic
// gives up too: the VM turns it into the expression's error.
func (st *state) call(n *xnode, vars []xval) (out xval, ok bool) {
	// Evaluate every argument first (nested calls use st.args too), then
	// box them into st.args.
	var buf [maxCallArgs]xval
	for i, k := range n.kids {
		v, ok := st.xeval(k, vars)
		if !ok {
			return xval{}, false
		}
		buf[i] = v
	}
	args := st.args[:len(n.kids)]
	for i := range args {
		args[i] = buf[i].box()
	}
	defer func() {
		clear(args)
		if recover() != nil {
			out, ok = xval{}, false
		}
	}()
	v, err := n.fn.fn(args...)
	if err != nil {
		return xval{}, false
	}
	return unbox(v), true
}

// xresult is xresult with the value boxed from the record's memory (see
// recordMem).
func (st *state) xresult(v xval) (any, error) {
	switch v.k {
	case xStr:
		return st.mem.str(v.s), nil
	case xInt, xInt64:
		return st.mem.int(v.i), nil
	case xFloat:
		if !math.IsNaN(v.f) && !math.IsInf(v.f, 0) {
			return st.mem.float(v.f), nil
		}
	}
	return xresult(v)
}

// xresult converts a native result as exprResult converts the VM's.
func xresult(v xval) (any, error) {
	switch v.k {
	case xNil:
		return nil, nil
	case xStr:
		return v.s, nil
	case xInt, xInt64:
		return v.i, nil
	case xBool:
		return v.b, nil
	}
	return exprResult(v.box())
}
