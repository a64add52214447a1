package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	durationType   = reflect.TypeOf(time.Duration(0))
	rawType        = reflect.TypeOf(json.RawMessage(nil))
	mappingRefType = reflect.TypeOf(MappingRef{})
	secretType     = reflect.TypeOf(Secret(""))
	positionType   = reflect.TypeOf(Position{})
)

// NamePattern is what source, connector and sync names match.
const NamePattern = `^[a-z][a-z0-9_-]*$`

var nameRe = regexp.MustCompile(NamePattern)

// fieldInfo is a struct field's tags.
type fieldInfo struct {
	key      string
	index    int
	def      string
	hasDef   bool
	enum     []string
	min, max string
	unit     string
	zero     string
	required bool
	example  string
	desc     string
}

// fields lists the YAML fields of struct type t, in declaration order.
func fields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("yaml")
		if !f.IsExported() || key == "" || key == "-" {
			continue
		}
		fi := fieldInfo{
			key:      key,
			index:    i,
			min:      f.Tag.Get("min"),
			max:      f.Tag.Get("max"),
			unit:     f.Tag.Get("unit"),
			zero:     f.Tag.Get("zero"),
			required: f.Tag.Get("required") == "true",
			example:  f.Tag.Get("example"),
			desc:     f.Tag.Get("desc"),
		}
		fi.def, fi.hasDef = f.Tag.Lookup("default")
		if e := f.Tag.Get("enum"); e != "" {
			fi.enum = strings.Split(e, ",")
		}
		out = append(out, fi)
	}
	return out
}

func fieldKeys(fs []fieldInfo) []string {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	return keys
}

// decode sets v from node n, reporting every problem under path.
func (l *loader) decode(n *yaml.Node, path string, v reflect.Value, fi fieldInfo) {
	n = deref(n)
	l.vals[path] = n
	switch {
	case v.Type() == rawType:
		l.decodeRaw(n, path, v)
		return
	case v.Type() == mappingRefType:
		l.decodeMappingRef(n, path, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		l.decodeStruct(n, path, v)
	case reflect.Map:
		l.decodeMap(n, path, v)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		l.decode(n, path, v.Elem(), fi)
	case reflect.Slice:
		l.decodeList(n, path, v, fi)
	default:
		l.decodeScalar(n, path, v, fi)
	}
}

// decodeList sets a slice of scalars from a YAML sequence.
func (l *loader) decodeList(n *yaml.Node, path string, v reflect.Value, fi fieldInfo) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errNode(n, path, "must be a list ([a, b]), not a %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		l.decode(item, fmt.Sprintf("%s[%d]", path, i), out.Index(i), fieldInfo{key: fi.key})
	}
	v.Set(out)
}

func (l *loader) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	fs := fields(v.Type())
	byKey := map[string]fieldInfo{}
	for _, f := range fs {
		byKey[f.key] = f
	}
	set := map[string]bool{}
	switch {
	case isNull(n):
	case n.Kind != yaml.MappingNode:
		l.errNode(n, path, "must be a mapping with the keys %s, not a %s", list(fieldKeys(fs)), kindName(n))
		return
	default:
		for _, p := range l.pairs(n, path, true) {
			key := p.k.Value
			f, ok := byKey[key]
			if !ok && path == "" && strings.HasPrefix(key, "x-") {
				continue // a top-level x- key holds anchors for reuse
			}
			if !ok {
				l.note(l.pos(p.k), joinPath(path, key), unknownMsg("key", key, "valid keys", fieldKeys(fs)))
				continue
			}
			fp := joinPath(path, key)
			l.keys[fp] = p.k
			if isNull(p.v) && isScalarKind(v.Field(f.index)) {
				l.vals[fp] = deref(p.v)
				l.errNode(p.v, fp, "has no value; give one%s, or remove the key%s", exampleHint(f), defaultHint(f))
				set[key] = true
				continue
			}
			set[key] = true
			l.decode(p.v, fp, v.Field(f.index), f)
		}
	}
	for _, f := range fs {
		if set[f.key] {
			if f.required && v.Field(f.index).Kind() == reflect.String && v.Field(f.index).String() == "" {
				fp := joinPath(path, f.key)
				l.errAt(fp, "must not be empty%s", exampleHint(f))
			}
			continue
		}
		fp := joinPath(path, f.key)
		fv := v.Field(f.index)
		switch {
		case f.required:
			l.errAt(fp, "missing; %s is required%s", f.key, exampleHint(f))
		case f.hasDef:
			if err := setString(fv, f.def); err != nil {
				panic(fmt.Sprintf("config: bad default %q for %s: %v", f.def, fp, err))
			}
		case fv.Kind() == reflect.Struct || fv.Kind() == reflect.Map || fv.Type() == rawType:
			l.decode(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}, fp, fv, f)
			delete(l.vals, fp)
		}
	}
}

func isScalarKind(v reflect.Value) bool {
	if v.Type() == rawType || v.Type() == mappingRefType {
		return false
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Map, reflect.Pointer, reflect.Slice:
		return false
	}
	return true
}

func exampleHint(f fieldInfo) string {
	if f.example != "" {
		return fmt.Sprintf(" (e.g. %s: %s)", f.key, f.example)
	}
	return ""
}

func defaultHint(f fieldInfo) string {
	if f.hasDef {
		if f.def == "" {
			return ` for the default ""`
		}
		return " for the default " + f.def
	}
	return ""
}

// unknownMsg formats `unknown WHAT "got"; did you mean "x"? LABEL: a, b`.
func unknownMsg(what, got, label string, candidates []string) string {
	msg := fmt.Sprintf("unknown %s %q", what, got)
	if len(candidates) > 1 {
		if c, ok := suggest(got, candidates); ok {
			msg += fmt.Sprintf("; did you mean %q?", c)
			return msg + " " + label + ": " + list(candidates)
		}
	}
	return msg + "; " + label + ": " + list(candidates)
}

func (l *loader) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	v.Set(reflect.MakeMap(v.Type()))
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.errNode(n, path, "must be a mapping of name: settings, not a %s", kindName(n))
		return
	}
	elem := v.Type().Elem()
	for _, p := range l.pairs(n, path, true) {
		name := p.k.Value
		fp := joinPath(path, name)
		l.keys[fp] = p.k
		if !nameRe.MatchString(name) {
			l.note(l.pos(p.k), fp, fmt.Sprintf("invalid name %q; names start with a lowercase letter, then lowercase letters, digits, _ or - (%s)", name, NamePattern))
		}
		ev := reflect.New(elem).Elem()
		l.decode(p.v, fp, ev, fieldInfo{})
		item := ev
		if item.Kind() == reflect.Pointer {
			item = item.Elem()
		}
		if item.Kind() == reflect.Struct {
			if f := item.FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
				f.SetString(name)
			}
			if f := item.FieldByName("Pos"); f.IsValid() && f.Type() == positionType {
				f.Set(reflect.ValueOf(l.pos(p.k)))
			}
		}
		v.SetMapIndex(reflect.ValueOf(name), ev)
	}
}

func (l *loader) decodeScalar(n *yaml.Node, path string, v reflect.Value, fi fieldInfo) {
	if n.Kind != yaml.ScalarNode {
		l.errNode(n, path, "must be %s, not a %s", typeName(v.Type(), fi), kindName(n))
		return
	}
	if l.isBad(path) {
		return // the reference failed to expand
	}
	s := n.Value
	if err := setString(v, s); err != nil {
		got := ""
		if _, ok := l.expanded[n]; !ok && v.Type() != secretType {
			got = "; got " + strconv.Quote(s)
		}
		l.errNode(n, path, "must be %s%s", typeName(v.Type(), fi), got)
		return
	}
	if len(fi.enum) > 0 && !contains(fi.enum, s) {
		l.errNode(n, path, "%s", unknownEnum(fi.key, l.quote(n), s, fi.enum))
		return
	}
	l.checkRange(n, path, v, fi)
}

func unknownEnum(key, quoted, got string, enum []string) string {
	msg := fmt.Sprintf("unknown %s %s", key, quoted)
	if c, ok := suggest(got, enum); ok && !strings.HasPrefix(quoted, "(") {
		msg += fmt.Sprintf("; did you mean %q?", c)
		return msg + " valid: " + list(enum)
	}
	return msg + "; valid: " + list(enum)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// typeName says what a value of type t must be, for messages.
func typeName(t reflect.Type, fi fieldInfo) string {
	unit := ""
	if fi.unit != "" {
		unit = " (" + fi.unit + ")"
	}
	switch {
	case t == durationType:
		return "a duration such as 500ms, 30s, 5m or 1h"
	case t == secretType:
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer" + unit
	case reflect.Float64, reflect.Float32:
		return "a number" + unit
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// setString parses s into v by v's type.
func setString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		if v.OverflowInt(i) {
			return fmt.Errorf("%d overflows", i)
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// checkRange applies the min, max and zero tags.
func (l *loader) checkRange(n *yaml.Node, path string, v reflect.Value, fi fieldInfo) {
	if fi.min == "" && fi.max == "" {
		return
	}
	var x, lo, hi float64
	var show func(float64) string
	switch {
	case v.Type() == durationType:
		x = float64(v.Int())
		show = func(f float64) string { return fmtDuration(time.Duration(f)) }
	case v.CanInt():
		x = float64(v.Int())
		show = func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	case v.CanFloat():
		x = v.Float()
		show = func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	default:
		return
	}
	parse := func(s string) float64 {
		t := reflect.New(v.Type()).Elem()
		if err := setString(t, s); err != nil {
			panic(fmt.Sprintf("config: bad range %q on %s", s, path))
		}
		if t.CanInt() {
			return float64(t.Int())
		}
		return t.Float()
	}
	lo, hi = math.Inf(-1), math.Inf(1)
	if fi.min != "" {
		lo = parse(fi.min)
	}
	if fi.max != "" {
		hi = parse(fi.max)
	}
	if x >= lo && x <= hi || (x == 0 && fi.zero != "") {
		return
	}
	var valid string
	switch {
	case fi.min != "" && fi.max != "":
		valid = fmt.Sprintf("%s to %s", show(lo), show(hi))
	case fi.min != "":
		valid = "at least " + show(lo)
	default:
		valid = "at most " + show(hi)
	}
	if fi.unit != "" {
		valid += " " + fi.unit
	}
	if fi.zero != "" {
		valid = "0 (" + fi.zero + "), or " + valid
	}
	got := show(x)
	if _, ok := l.expanded[n]; ok {
		got = hiddenValue
	}
	l.errNode(n, path, "%s is out of range; valid: %s", got, valid)
}

// decodeRaw turns a connector config block into JSON, keeping it for the
// schema check.
func (l *loader) decodeRaw(n *yaml.Node, path string, v reflect.Value) {
	blk := &rawBlock{value: map[string]any{}}
	l.raw[path] = blk
	switch {
	case isNull(n):
	case n.Kind != yaml.MappingNode:
		l.errNode(n, path, "must be a mapping of the connector's settings, not a %s", kindName(n))
	default:
		blk.node = n
		if m, ok := l.toJSON(n, path).(map[string]any); ok {
			blk.value = m
		}
	}
	b, err := json.Marshal(blk.value)
	if err != nil {
		l.errNode(n, path, "cannot be turned into JSON: %v", err)
		return
	}
	v.SetBytes(b)
}

// toJSON turns a YAML node into a JSON-compatible value.
func (l *loader) toJSON(n *yaml.Node, path string) any {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range l.pairs(n, path, true) {
			m[p.k.Value] = l.toJSON(p.v, joinPath(path, p.k.Value))
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = l.toJSON(c, fmt.Sprintf("%s[%d]", path, i))
		}
		return s
	}
	s := n.Value
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(s, "true")
	case "!!int":
		clean := strings.ReplaceAll(s, "_", "")
		if i, err := strconv.ParseInt(clean, 0, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(clean, 64); err == nil {
			return f
		}
	case "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			l.errNode(n, path, "%s is not a JSON number; write a finite number or quote it", l.quote(n))
			return nil
		}
		return f
	}
	return s
}

// decodeMappingRef takes a mapping file path or an inline mapping block.
func (l *loader) decodeMappingRef(n *yaml.Node, path string, v reflect.Value) {
	ref := MappingRef{SourceFile: l.file, Pos: l.pos(n)}
	switch {
	case n.Kind == yaml.MappingNode:
		if len(n.Content) == 0 {
			l.errNode(n, path, "the inline mapping block is empty; give its fields, or a mapping file path")
			return
		}
		ref.Node = n
	case n.Kind == yaml.ScalarNode && !isNull(n):
		if n.Value == "" {
			l.errNode(n, path, "must not be empty; give a mapping file path (relative to the config file) or an inline mapping block")
			return
		}
		full := l.resolve(n.Value)
		st, err := os.Stat(full)
		// Where the loader looked shows the value: not for one from a reference.
		where := func(format string) string {
			if _, ok := l.expanded[n]; ok {
				return ""
			}
			return fmt.Sprintf(format, strconv.Quote(full))
		}
		switch {
		case err != nil:
			l.errNode(n, path, "mapping file %s not found%s; give a path relative to the config file's directory, or an inline mapping block", l.quote(n), where(" (looked for %s)"))
		case st.IsDir():
			l.errNode(n, path, "mapping file %s is a directory%s; give a mapping file, or an inline mapping block", l.quote(n), where(" (%s)"))
		}
		ref.File = full
	default:
		l.errNode(n, path, "must be a mapping file path or an inline mapping block, not a %s", kindName(n))
		return
	}
	v.Set(reflect.ValueOf(ref))
}

// fmtDuration writes d the short way: 1h, 1m30s, 500ms (not 1h0m0s).
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
