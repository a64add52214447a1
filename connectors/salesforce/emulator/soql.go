package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ---- lexer ----

type tokKind int

const (
	tkEOF tokKind = iota
	tkIdent
	tkString
	tkNumber
	tkDate
	tkDatetime
	tkPunct
)

type token struct {
	kind tokKind
	text string // identifier/punct text, or the decoded string literal
	raw  string // a string literal as written, between its quotes
	pos  int    // byte offset in the query
	// likeOnly: the string literal holds \% or \_, escapes of LIKE patterns
	likeOnly bool
}

// lexString reads the string literal that starts with the quote at q[start]:
// its value, whether it holds escapes valid in LIKE patterns only, and the
// position of its closing quote.
func lexString(q string, start int) (text string, likeOnly bool, end int, err *soqlErr) {
	var sb strings.Builder
	for j := start + 1; j < len(q); {
		switch q[j] {
		case '\'':
			return sb.String(), likeOnly, j, nil
		case '\\':
			r, n, like, ok := soqlEscape(q[j:])
			if !ok {
				if j+1 >= len(q) {
					j = len(q)
					continue // unterminated
				}
				return "", false, 0, &soqlErr{code: "MALFORMED_QUERY", pos: j, msg: fmt.Sprintf(
					"line 1:%d Invalid string literal '%s'. Illegal character sequence '%s' in string literal.", j, q[start+1:min(j+n, len(q))], q[j:min(j+n, len(q))])}
			}
			likeOnly = likeOnly || like
			sb.WriteRune(r)
			j += n
		default:
			r, n := utf8.DecodeRuneInString(q[j:])
			sb.WriteRune(r) // an invalid byte is U+FFFD, as Salesforce decodes the query
			j += n
		}
	}
	return "", false, 0, &soqlErr{code: "MALFORMED_QUERY", pos: start, msg: "line 1:" + strconv.Itoa(start) + " mismatched character '<EOF>' expecting '''"}
}

// soqlEscape decodes the escape sequence at the start of s (a backslash,
// then n, r, t, b, f in either case, a quote, a double quote, a backslash,
// uXXXX, or, in LIKE patterns, % or _): the character, the bytes it takes,
// whether it is one of LIKE's, and false when s starts with no valid escape
// (then n is the bytes of the bad sequence).
func soqlEscape(s string) (r rune, n int, like, ok bool) {
	if len(s) < 2 || s[0] != '\\' {
		return 0, len(s), false, false
	}
	switch s[1] {
	case 'n', 'N':
		return '\n', 2, false, true
	case 'r', 'R':
		return '\r', 2, false, true
	case 't', 'T':
		return '\t', 2, false, true
	case 'b', 'B':
		return '\b', 2, false, true
	case 'f', 'F':
		return '\f', 2, false, true
	case '\'', '"', '\\':
		return rune(s[1]), 2, false, true
	case '%', '_':
		return rune(s[1]), 2, true, true
	case 'u', 'U':
		if len(s) >= 6 {
			if v, err := strconv.ParseUint(s[2:6], 16, 16); err == nil {
				r := rune(v)
				// a UTF-16 surrogate pair, as Java strings hold characters beyond U+FFFF
				if utf16.IsSurrogate(r) {
					if len(s) >= 12 && s[6] == '\\' && (s[7] == 'u' || s[7] == 'U') {
						if lo, err := strconv.ParseUint(s[8:12], 16, 16); err == nil {
							if pair := utf16.DecodeRune(r, rune(lo)); pair != utf8.RuneError {
								return pair, 12, false, true
							}
						}
					}
					return utf8.RuneError, 6, false, true // a lone half
				}
				return r, 6, false, true
			}
		}
		return 0, min(6, len(s)), false, false
	}
	_, size := utf8.DecodeRuneInString(s[1:])
	return 0, 1 + size, false, false
}

var dateLitRe = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2}))?`)

func lex(q string) ([]token, *soqlErr) {
	var toks []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			text, likeOnly, end, err := lexString(q, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tkString, text: text, raw: q[i+1 : end], likeOnly: likeOnly, pos: i})
			i = end + 1
		case c >= '0' && c <= '9' || ((c == '-' || c == '+') && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9'):
			if m := dateLitRe.FindString(q[i:]); m != "" && c != '-' && c != '+' {
				kind := tkDate
				if strings.Contains(m, "T") {
					kind = tkDatetime
				}
				toks = append(toks, token{kind: kind, text: m, pos: i})
				i += len(m)
				continue
			}
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tkNumber, text: q[i:j], pos: i})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '.' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: tkIdent, text: q[i:j], pos: i})
			i = j
		default:
			two := ""
			if i+1 < len(q) {
				two = q[i : i+2]
			}
			switch {
			case two == "!=" || two == "<>" || two == "<=" || two == ">=":
				toks = append(toks, token{kind: tkPunct, text: two, pos: i})
				i += 2
			case strings.IndexByte("(),=<>", c) >= 0:
				toks = append(toks, token{kind: tkPunct, text: string(c), pos: i})
				i++
			default:
				return nil, &soqlErr{code: "MALFORMED_QUERY", pos: i, msg: fmt.Sprintf("line 1:%d no viable alternative at character '%c'", i, c)}
			}
		}
	}
	return append(toks, token{kind: tkEOF, pos: len(q)}), nil
}

// soqlErr is a query error with the position it points at.
type soqlErr struct {
	code string
	pos  int
	msg  string
}

// toSF formats the error the way Salesforce does: the query, a caret, the position.
func (e *soqlErr) toSF(q string) *sfError {
	col := e.pos
	if col > len(q) {
		col = len(q)
	}
	return newErr(e.code, "\n%s\n%s^\nERROR at Row:1:Column:%d\n%s", q, strings.Repeat(" ", col), col+1, e.msg)
}

// ---- AST ----

// fieldPath is a (possibly relationship) field reference such as Member.MembershipNumber.
type fieldPath struct {
	text  string
	rels  []*fieldDef  // reference fields followed, in order
	objs  []*objectDef // the object reached after each relationship
	leaf  *fieldDef
	owner *objectDef // the object holding leaf
}

type cond interface{}

type andCond []cond
type orCond []cond
type notCond struct{ c cond }
type groupCond struct{ c cond } // a parenthesized condition
type cmpCond struct {
	path    fieldPath
	op      string // = != < <= > >= like
	val     any
	like    *regexp.Regexp
	pattern string // of a LIKE, as written between its quotes
}
type inCond struct {
	path fieldPath
	vals []any
	not  bool
}

type orderItem struct {
	path       fieldPath
	desc       bool
	nullsFirst bool
}

type soqlQuery struct {
	text    string
	object  *objectDef
	count   bool
	fields  []fieldPath
	where   cond
	order   []orderItem
	limit   int // -1: none
	offset  int
	deleted bool // queryAll
}

// ---- parser ----

type parser struct {
	s    *Server
	q    string
	toks []token
	i    int
	obj  *objectDef
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

// back undoes next(t); at the end of input next did not advance.
func (p *parser) back(t token) {
	if t.kind != tkEOF {
		p.i--
	}
}

func (p *parser) isKw(kw string) bool {
	t := p.peek()
	return t.kind == tkIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tkPunct && t.text == s
}

func (p *parser) unexpected() *soqlErr {
	t := p.peek()
	text := t.text
	switch t.kind {
	case tkEOF:
		text = "<EOF>"
	case tkString:
		text = "'" + t.text + "'"
	}
	return &soqlErr{code: "MALFORMED_QUERY", pos: t.pos, msg: fmt.Sprintf("unexpected token: '%s'", text)}
}

func (p *parser) expectKw(kw string) *soqlErr {
	if !p.isKw(kw) {
		return p.unexpected()
	}
	p.next()
	return nil
}

func (p *parser) expectPunct(s string) *soqlErr {
	if !p.isPunct(s) {
		return p.unexpected()
	}
	p.next()
	return nil
}

var reserved = map[string]bool{"select": true, "from": true, "where": true, "and": true, "or": true, "not": true,
	"order": true, "by": true, "limit": true, "offset": true, "in": true, "like": true, "null": true,
	"true": true, "false": true, "asc": true, "desc": true, "nulls": true, "first": true, "last": true, "group": true,
	"having": true, "with": true, "for": true, "using": true, "includes": true, "excludes": true}

// parseSOQL parses the supported SOQL subset and resolves every field against the schema.
func (s *Server) parseSOQL(q string) (*soqlQuery, *soqlErr) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{s: s, q: q, toks: toks}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	// find FROM first: fields are resolved against the object
	type rawSel struct {
		tok   token
		count bool
		all   string
	}
	var sels []rawSel
	for {
		t := p.peek()
		if t.kind != tkIdent || reserved[strings.ToLower(t.text)] {
			return nil, p.unexpected()
		}
		p.next()
		switch {
		case strings.EqualFold(t.text, "COUNT") && p.isPunct("("):
			p.next()
			if !p.isPunct(")") {
				return nil, &soqlErr{code: "MALFORMED_QUERY", pos: p.peek().pos, msg: "the emulator supports COUNT() only (no COUNT(field), no aggregate functions)"}
			}
			p.next()
			sels = append(sels, rawSel{tok: t, count: true})
		case strings.EqualFold(t.text, "FIELDS") && p.isPunct("("):
			p.next()
			kind := p.next()
			if kind.kind != tkIdent || !(strings.EqualFold(kind.text, "ALL") || strings.EqualFold(kind.text, "STANDARD") || strings.EqualFold(kind.text, "CUSTOM")) {
				return nil, &soqlErr{code: "MALFORMED_QUERY", pos: kind.pos, msg: "FIELDS() takes ALL, STANDARD or CUSTOM"}
			}
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			sels = append(sels, rawSel{tok: t, all: strings.ToUpper(kind.text)})
		case p.isPunct("("):
			return nil, &soqlErr{code: "MALFORMED_QUERY", pos: t.pos, msg: fmt.Sprintf("the emulator does not support the function %s() or subqueries", t.text)}
		default:
			sels = append(sels, rawSel{tok: t})
		}
		if !p.isPunct(",") {
			break
		}
		p.next()
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	objTok := p.next()
	if objTok.kind != tkIdent {
		p.back(objTok)
		return nil, p.unexpected()
	}
	obj := s.schema.object(objTok.text)
	if obj == nil {
		return nil, &soqlErr{code: "INVALID_TYPE", pos: objTok.pos, msg: fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", objTok.text)}
	}
	p.obj = obj
	sq := &soqlQuery{text: q, object: obj, limit: -1}
	for _, sel := range sels {
		switch {
		case sel.count:
			if len(sels) > 1 {
				return nil, &soqlErr{code: "MALFORMED_QUERY", pos: sel.tok.pos, msg: "COUNT() must be the only element in the SELECT list"}
			}
			sq.count = true
		case sel.all != "":
			for _, f := range obj.Fields {
				if sel.all == "ALL" || (sel.all == "CUSTOM") == f.Custom {
					sq.fields = append(sq.fields, fieldPath{text: f.Name, leaf: f, owner: obj})
				}
			}
		default:
			fp, err := p.resolve(sel.tok)
			if err != nil {
				return nil, err
			}
			sq.fields = append(sq.fields, fp)
		}
	}
	if p.isKw("WHERE") {
		p.next()
		c, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		sq.where = c
	}
	if p.isKw("ORDER") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			t := p.next()
			if t.kind != tkIdent || reserved[strings.ToLower(t.text)] {
				p.back(t)
				return nil, p.unexpected()
			}
			fp, err := p.resolve(t)
			if err != nil {
				return nil, err
			}
			item := orderItem{path: fp}
			if p.isKw("ASC") {
				p.next()
			} else if p.isKw("DESC") {
				p.next()
				item.desc = true
			}
			item.nullsFirst = !item.desc
			if p.isKw("NULLS") {
				p.next()
				switch {
				case p.isKw("FIRST"):
					item.nullsFirst = true
				case p.isKw("LAST"):
					item.nullsFirst = false
				default:
					return nil, p.unexpected()
				}
				p.next()
			}
			sq.order = append(sq.order, item)
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	if p.isKw("LIMIT") {
		p.next()
		t := p.next()
		n, err := strconv.Atoi(t.text)
		if t.kind != tkNumber || err != nil || n < 0 {
			p.back(t)
			return nil, p.unexpected()
		}
		sq.limit = n
	}
	if p.isKw("OFFSET") {
		p.next()
		t := p.next()
		n, err := strconv.Atoi(t.text)
		if t.kind != tkNumber || err != nil || n < 0 {
			p.back(t)
			return nil, p.unexpected()
		}
		if n > 2000 {
			return nil, &soqlErr{code: "NUMBER_OUTSIDE_VALID_RANGE", pos: t.pos, msg: "Maximum SOQL offset allowed is 2000"}
		}
		sq.offset = n
	}
	if p.peek().kind != tkEOF {
		return nil, p.unexpected()
	}
	for _, sel := range sels {
		if sel.all != "" && sel.all != "STANDARD" && (sq.limit < 0 || sq.limit > 200) {
			return nil, &soqlErr{code: "MALFORMED_QUERY", pos: sel.tok.pos, msg: "The SOQL FIELDS function must have a LIMIT of at most 200"}
		}
	}
	return sq, nil
}

func noSuchColumn(t token, obj *objectDef, name string) *soqlErr {
	return &soqlErr{code: "INVALID_FIELD", pos: t.pos, msg: fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, obj.Name)}
}

// resolve maps a field token (Name, Member.MembershipNumber) onto the schema.
func (p *parser) resolve(t token) (fieldPath, *soqlErr) {
	parts := strings.Split(t.text, ".")
	obj := p.obj
	// a leading "Obj." naming the queried object is allowed
	if len(parts) > 1 && strings.EqualFold(parts[0], obj.Name) && obj.relByLower[strings.ToLower(parts[0])] == nil {
		parts = parts[1:]
	}
	fp := fieldPath{text: t.text}
	for i, part := range parts {
		if i == len(parts)-1 {
			f := obj.field(part)
			if f == nil {
				return fp, noSuchColumn(t, obj, part)
			}
			fp.leaf, fp.owner = f, obj
			return fp, nil
		}
		rel := obj.relByLower[strings.ToLower(part)]
		if rel == nil {
			return fp, &soqlErr{code: "INVALID_FIELD", pos: t.pos, msg: fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", part)}
		}
		var target *objectDef
		for _, name := range rel.ReferenceTo {
			if o := p.s.schema.object(name); o != nil {
				target = o
				break
			}
		}
		if target == nil {
			return fp, &soqlErr{code: "INVALID_FIELD", pos: t.pos, msg: fmt.Sprintf("The emulator does not hold %s records: the relationship '%s' cannot be traversed", strings.Join(rel.ReferenceTo, "/"), part)}
		}
		fp.rels = append(fp.rels, rel)
		fp.objs = append(fp.objs, target)
		obj = target
	}
	return fp, nil
}

func (p *parser) parseOr() (cond, *soqlErr) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if !p.isKw("OR") {
		return first, nil
	}
	_, firstIsAnd := first.(andCond)
	out := orCond{first}
	for p.isKw("OR") {
		if firstIsAnd {
			return nil, p.unexpected()
		}
		p.next()
		c, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if _, isAnd := c.(andCond); isAnd {
			return nil, p.unexpected()
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *parser) parseAnd() (cond, *soqlErr) {
	first, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	if !p.isKw("AND") {
		return first, nil
	}
	out := andCond{first}
	for p.isKw("AND") {
		p.next()
		c, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if p.isKw("OR") {
		return nil, p.unexpected() // SOQL needs parentheses to mix AND and OR
	}
	return out, nil
}

func (p *parser) parseNot() (cond, *soqlErr) {
	if p.isKw("NOT") {
		p.next()
		c, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return notCond{c}, nil
	}
	if p.isPunct("(") {
		p.next()
		c, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return groupCond{c}, nil
	}
	return p.parseCmp()
}

func (p *parser) parseCmp() (cond, *soqlErr) {
	t := p.next()
	if t.kind != tkIdent || reserved[strings.ToLower(t.text)] {
		p.back(t)
		return nil, p.unexpected()
	}
	fp, err := p.resolve(t)
	if err != nil {
		return nil, err
	}
	switch {
	case p.isKw("IN") || p.isKw("NOT"):
		not := p.isKw("NOT")
		p.next()
		if not {
			if err := p.expectKw("IN"); err != nil {
				return nil, err
			}
		}
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		ic := inCond{path: fp, not: not}
		for {
			v, err := p.literal(fp)
			if err != nil {
				return nil, err
			}
			ic.vals = append(ic.vals, v)
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return ic, nil
	case p.isKw("LIKE"):
		p.next()
		lt := p.peek()
		if lt.kind != tkString {
			return nil, p.unexpected()
		}
		if !fp.leaf.Type.isText() {
			return nil, &soqlErr{code: "INVALID_FIELD", pos: t.pos, msg: fmt.Sprintf("invalid operator on %s field: LIKE applies to text fields only", fp.leaf.Type)}
		}
		p.next()
		return cmpCond{path: fp, op: "like", like: likeRegexp(lt.raw), pattern: lt.raw}, nil
	}
	op := p.peek()
	if op.kind != tkPunct || op.text == "(" || op.text == ")" || op.text == "," {
		return nil, p.unexpected()
	}
	p.next()
	v, err := p.literal(fp)
	if err != nil {
		return nil, err
	}
	o := op.text
	if o == "<>" {
		o = "!="
	}
	if v == nil && o != "=" && o != "!=" {
		return nil, &soqlErr{code: "MALFORMED_QUERY", pos: op.pos, msg: "null can only be compared with = or !="}
	}
	return cmpCond{path: fp, op: o, val: v}, nil
}

// likeRegexp compiles a LIKE pattern, as written between its quotes (the
// lexer checked its escapes): % is any text, _ any one character, an escaped
// character (\%, \_, \\, \n, ...) itself. LIKE ignores case.
func likeRegexp(raw string) *regexp.Regexp {
	var sb strings.Builder
	sb.WriteString("(?is)^")
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRuneInString(raw[i:])
		switch r {
		case '\\':
			if e, en, _, ok := soqlEscape(raw[i:]); ok {
				r, n = e, en
			}
			sb.WriteString(regexp.QuoteMeta(string(r)))
		case '%':
			sb.WriteString(".*")
		case '_':
			sb.WriteString(".")
		default:
			sb.WriteString(regexp.QuoteMeta(string(r)))
		}
		i += n
	}
	sb.WriteString("$")
	return regexp.MustCompile(sb.String())
}

// literal reads a value and converts it to the stored form of the field, checking that
// its kind fits the field type as SOQL does.
func (p *parser) literal(fp fieldPath) (any, *soqlErr) {
	t := p.next()
	f := fp.leaf
	mismatch := func(want string, quoted bool) *soqlErr {
		q := "should not be enclosed in quotes"
		if quoted {
			q = "should be enclosed in quotes"
		}
		return &soqlErr{code: "INVALID_QUERY_FILTER_OPERATOR", pos: t.pos, msg: fmt.Sprintf("value of filter criterion for field '%s' must be of type %s and %s", f.Name, want, q)}
	}
	if t.kind == tkIdent && strings.EqualFold(t.text, "null") {
		return nil, nil
	}
	if t.kind == tkString && t.likeOnly {
		return nil, &soqlErr{code: "MALFORMED_QUERY", pos: t.pos, msg: fmt.Sprintf(
			"line 1:%d Invalid string literal '%s'. Illegal character sequence: \\%% and \\_ escape LIKE patterns only", t.pos, t.raw)}
	}
	switch {
	case f.Type == tID || f.Type == tReference:
		if t.kind != tkString {
			return nil, mismatch("id", true)
		}
		id, ok := normalizeID(t.text)
		if !ok {
			if t.text == "" {
				return "", nil
			}
			return nil, &soqlErr{code: "INVALID_QUERY_FILTER_OPERATOR", pos: t.pos, msg: fmt.Sprintf("invalid ID field: %s", t.text)}
		}
		return id, nil
	case f.Type.isText():
		if t.kind != tkString {
			return nil, mismatch("string", true)
		}
		return t.text, nil
	case f.Type.isNumber():
		if t.kind != tkNumber {
			return nil, mismatch("double", false)
		}
		n, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, mismatch("double", false)
		}
		return n, nil
	case f.Type == tBoolean:
		if t.kind != tkIdent || !(strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false")) {
			return nil, mismatch("boolean", false)
		}
		return strings.EqualFold(t.text, "true"), nil
	case f.Type == tDate:
		if t.kind != tkDate {
			return nil, mismatch("date", false)
		}
		if _, err := time.Parse(dateLayout, t.text); err != nil {
			return nil, mismatch("date", false)
		}
		return t.text, nil
	case f.Type == tDatetime:
		if t.kind != tkDatetime {
			return nil, mismatch("dateTime", false)
		}
		tm, ok := parseDatetime(t.text)
		if !ok {
			if x, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", t.text); err == nil {
				tm = x
			} else {
				return nil, mismatch("dateTime", false)
			}
		}
		return formatDatetime(tm), nil
	}
	return nil, p.unexpected()
}
