package mappings

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Spec is a mapping as written in YAML, before compilation. ParseFile and
// ParseNode build it with the positions of every construct so that Compile
// can name the file, line and column of a problem. A Spec may also be built
// in code (positions then stay zero).
type Spec struct {
	// File is the file the mapping was read from, for messages.
	File string
	// Pos is where the mapping starts in File.
	Pos Pos
	// Name names the mapping in messages and test output; defaults to the
	// file's base name without extension.
	Name string
	// Description is free text for people.
	Description string
	// When is an expression; records for which it is false are filtered
	// (Apply returns ErrFiltered). Empty: every record is mapped.
	When string
	// WhenPos is where When is written.
	WhenPos Pos
	// Source optionally declares the shape of the input (its fields and
	// types, or a sample), which turns unknown source fields into compile
	// errors with suggestions and gives expressions typed variables.
	Source *SourceSpec
	// Fields are the target fields, in the order written.
	Fields []*FieldSpec
}

// SourceSpec declares the input a mapping expects.
type SourceSpec struct {
	// Pos is where the source block is written.
	Pos Pos
	// Fields is the declared schema of the event data ("source.fields").
	Fields []*SourceField
	// Sample is a sample of the event data as JSON ("source.sample" or
	// "source.sample_file"); when Fields is empty the schema is inferred
	// from it.
	Sample []byte
	// SamplePos is where the sample is written.
	SamplePos Pos
}

// SourceField is one declared field of the input data.
type SourceField struct {
	// Name is the JSON key.
	Name string
	// Type is one of string, number, integer, boolean, time, object, array, any.
	Type string
	// Fields are the members of an object, or of each element of an array of
	// objects.
	Fields []*SourceField
	// Elem is the element type of an array of scalars ("" = any).
	Elem string
	// Pos is where the field is declared.
	Pos Pos
}

// FieldSpec is one target field. Exactly one source is set: From, Value
// (HasValue), Expr, Each, or Fields (a nested object).
type FieldSpec struct {
	// Name is the target field name (the output key).
	Name string
	// Pos is where the field's name is written.
	Pos Pos
	// Description is free text for people.
	Description string

	// From is a gjson path into the event data, or an envelope attribute
	// ($event.id, $event.type, $event.source, $event.subject, $event.time).
	From string
	// Value is a constant (JSON-compatible); HasValue tells a null constant
	// from no constant.
	Value    any
	HasValue bool
	// Expr is an expression (expr-lang) over the data fields and $event.
	Expr string
	// Each is a gjson path to an array: the field becomes an array with one
	// element per source element, mapped by Fields (objects) or by this
	// field's own From/Expr/Transform/Map relative to the element.
	Each string
	// Fields are the members of a nested object (or of each element).
	Fields []*FieldSpec

	// Transform is a chain of built-in transforms ("trim", "truncate(40)").
	Transform []string
	// Map translates values (the source value's text → the target value).
	Map []MapEntry
	// HasMap is true when a map is given (even an empty one).
	HasMap bool
	// Fallback is used for values Map does not list; without it such a
	// value is a record error.
	Fallback    any
	HasFallback bool
	// Lookup resolves the value through the cross-reference, or turns it
	// into an external-id relationship.
	Lookup *LookupSpec

	// Default is used when the value is missing or null.
	Default    any
	HasDefault bool
	// Required makes a missing or null value (after Default) a record error.
	Required bool

	// pos holds the position of each key's value ("from", "map", ...).
	pos map[string]Pos
}

// KeyPos returns where the value of key (e.g. "from") is written, or the
// field's own position when unknown.
func (f *FieldSpec) KeyPos(key string) Pos {
	if p, ok := f.pos[key]; ok {
		return p
	}
	return f.Pos
}

// MapEntry is one translation of a `map`.
type MapEntry struct {
	// Key is the source value as text ("active", "1", "true").
	Key string
	// Value is the target value.
	Value any
	// Pos is where the entry is written.
	Pos Pos
}

// LookupSpec says how a value (an entity id at the source) becomes a
// reference in the target.
type LookupSpec struct {
	// Pos is where the lookup block is written.
	Pos Pos
	// System and Object name the cross-reference to read
	// ("salesforce", "LoyaltyProgramMember"): the value becomes the target
	// id stored there.
	System string
	Object string
	// Missing says what happens when the cross-reference has no entry:
	// "retry" (default: a retryable error wrapping ErrUnresolved), "error"
	// (a RecordError), "null" (the value becomes null, Default applies),
	// "omit" (the field is left out).
	Missing string
	// ExternalID, instead of System/Object, makes the value a relationship
	// by external id: {ExternalID: value}, the way Salesforce accepts it in
	// a relationship field (Parent__r: {Ext_Id__c: "x"}).
	ExternalID string
}

var (
	topKeys    = []string{"name", "description", "when", "source", "fields"}
	fieldKeys  = []string{"description", "from", "value", "expr", "each", "fields", "transform", "map", "fallback", "lookup", "default", "required"}
	lookupKeys = []string{"system", "object", "missing", "external_id"}
	sourceKeys = []string{"fields", "sample", "sample_file"}
)

// ParseFile reads a mapping file.
func ParseFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading mapping: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{{File: path, Msg: "invalid YAML: " + err.Error()}}
	}
	if doc.Kind == 0 {
		return nil, Problems{{File: path, Pos: Pos{1, 1}, Msg: "the mapping file is empty", Hint: "write a mapping with a `fields:` block"}}
	}
	return parseSpec(path, &doc, false)
}

// ParseNode reads an inline mapping from a config's yaml.Node; file names
// the config file, for messages. The node is a mapping with the same keys as
// a mapping file, or `{file: PATH}` naming a mapping file (relative to the
// directory of file).
func ParseNode(file string, node *yaml.Node) (*Spec, error) {
	if node == nil {
		return nil, Problems{{File: file, Msg: "no mapping given"}}
	}
	return parseSpec(file, node, true)
}

func parseSpec(file string, node *yaml.Node, inline bool) (*Spec, error) {
	p := &yamlParser{file: file}
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	node = deref(node)
	if node.Kind != yaml.MappingNode {
		return nil, Problems{p.at(node, "", "a mapping must be a YAML mapping with a `fields:` block, not "+kindName(node), "")}
	}
	if inline {
		if ref := findKey(node, "file"); ref != nil {
			if len(node.Content) != 2 || ref.Kind != yaml.ScalarNode {
				return nil, Problems{p.at(ref, "file", "`file:` names a mapping file and stands alone", "move the other keys into that file")}
			}
			path := ref.Value
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(file), path)
			}
			return ParseFile(path)
		}
	}
	s := &Spec{File: file, Pos: posOf(node)}
	base := filepath.Base(file)
	s.Name = base[:len(base)-len(filepath.Ext(base))]
	p.mapping(node, "", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			s.Name = p.str(v, key)
		case "description":
			s.Description = p.str(v, key)
		case "when":
			s.When = p.str(v, key)
			s.WhenPos = contentPos(v)
		case "source":
			s.Source = p.source(v)
		case "fields":
			s.Fields = p.fields(v, "fields")
		}
	})
	if findKey(node, "fields") == nil && len(p.probs) == 0 {
		p.add(node, "", "the mapping has no `fields:` block", "add `fields:` with one entry per target field")
	}
	if len(p.probs) > 0 {
		sortProblems(p.probs)
		return nil, p.probs
	}
	return s, nil
}

type yamlParser struct {
	file  string
	probs Problems
}

func (p *yamlParser) at(n *yaml.Node, path, msg, hint string) *Problem {
	return &Problem{File: p.file, Pos: posOf(n), Path: path, Msg: msg, Hint: hint}
}

func (p *yamlParser) add(n *yaml.Node, path, msg, hint string) {
	p.probs = append(p.probs, p.at(n, path, msg, hint))
}

// mapping walks a YAML mapping, reporting unknown and duplicate keys.
func (p *yamlParser) mapping(n *yaml.Node, path string, allowed []string, fn func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "expected a mapping, got "+kindName(n), "")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := k.Value
		kp := join(path, key)
		if !contains(allowed, key) {
			hint := didYouMean(key, allowed)
			if hint == "" {
				hint = "valid keys: " + quoteList(allowed, 20)
			}
			p.add(k, kp, "unknown key `"+key+"`", hint)
			continue
		}
		if seen[key] {
			p.add(k, kp, "duplicate key `"+key+"`", "")
			continue
		}
		seen[key] = true
		fn(key, k, v)
	}
}

func (p *yamlParser) str(v *yaml.Node, path string) string {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.add(v, path, "expected a string, got "+kindName(v), "")
		return ""
	}
	return v.Value
}

func (p *yamlParser) fields(n *yaml.Node, path string) []*FieldSpec {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "expected a mapping of target field names, got "+kindName(n), "write `FieldName: {from: path}` entries")
		return nil
	}
	var out []*FieldSpec
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		fp := path + "." + k.Value
		if k.Value == "" {
			p.add(k, path, "empty field name", "")
			continue
		}
		if seen[k.Value] {
			p.add(k, fp, "duplicate field `"+k.Value+"`", "")
			continue
		}
		seen[k.Value] = true
		if f := p.field(k, v, fp); f != nil {
			out = append(out, f)
		}
	}
	return out
}

func (p *yamlParser) field(k, v *yaml.Node, path string) *FieldSpec {
	f := &FieldSpec{Name: k.Value, Pos: posOf(k), pos: map[string]Pos{}}
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		// Shorthand: `Email: email` is `Email: {from: email}`.
		f.From = v.Value
		f.pos["from"] = posOf(v)
		return f
	}
	if v.Kind != yaml.MappingNode {
		p.add(v, path, "expected a field definition (a mapping with from, value, expr, ...) or a source path, got "+kindName(v), "")
		return nil
	}
	p.mapping(v, path, fieldKeys, func(key string, kn, vn *yaml.Node) {
		f.pos[key] = contentPos(vn)
		kp := path + "." + key
		switch key {
		case "description":
			f.Description = p.str(vn, kp)
		case "from":
			f.From = p.str(vn, kp)
		case "value":
			f.Value, f.HasValue = p.value(vn, kp), true
		case "expr":
			f.Expr = p.str(vn, kp)
		case "each":
			f.Each = p.str(vn, kp)
		case "fields":
			f.Fields = p.fields(vn, kp)
		case "transform":
			f.Transform = p.transforms(vn, kp)
		case "map":
			f.HasMap = true
			f.Map = p.mapEntries(vn, kp)
		case "fallback":
			f.Fallback, f.HasFallback = p.value(vn, kp), true
		case "default":
			f.Default, f.HasDefault = p.value(vn, kp), true
		case "required":
			if vn.Kind != yaml.ScalarNode || vn.Tag != "!!bool" {
				p.add(vn, kp, "`required` takes true or false, got "+describeNode(vn), "")
				return
			}
			f.Required = vn.Value == "true" || vn.Value == "True" || vn.Value == "TRUE"
		case "lookup":
			f.Lookup = p.lookup(vn, kp)
		}
	})
	return f
}

func (p *yamlParser) transforms(n *yaml.Node, path string) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		// One transform, or several joined with "|".
		return splitChain(n.Value)
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			c = deref(c)
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				p.add(c, path, "a transform is a name like `lower` or `truncate(40)`, got "+kindName(c), "")
				continue
			}
			out = append(out, c.Value)
		}
		return out
	}
	p.add(n, path, "expected a list of transforms, got "+kindName(n), "write `transform: [trim, lower]`")
	return nil
}

func (p *yamlParser) mapEntries(n *yaml.Node, path string) []MapEntry {
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "expected a mapping of source value → target value, got "+kindName(n), "write `map: {active: Active}`")
		return nil
	}
	var out []MapEntry
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			p.add(k, path, "a map key is a source value (string, number or boolean), got "+describeNode(k), "null source values use `default`")
			continue
		}
		key := k.Value
		if k.Tag == "!!bool" {
			key = canonBool(key)
		}
		if seen[key] {
			p.add(k, path+"."+key, "duplicate map key `"+key+"`", "")
			continue
		}
		seen[key] = true
		out = append(out, MapEntry{Key: key, Value: p.value(v, path+"."+key), Pos: posOf(k)})
	}
	return out
}

func (p *yamlParser) lookup(n *yaml.Node, path string) *LookupSpec {
	l := &LookupSpec{Pos: posOf(n)}
	p.mapping(n, path, lookupKeys, func(key string, _, v *yaml.Node) {
		kp := path + "." + key
		switch key {
		case "system":
			l.System = p.str(v, kp)
		case "object":
			l.Object = p.str(v, kp)
		case "missing":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				l.Missing = "null" // `missing: null` reads as YAML null
				return
			}
			l.Missing = p.str(v, kp)
		case "external_id":
			l.ExternalID = p.str(v, kp)
		}
	})
	return l
}

func (p *yamlParser) source(n *yaml.Node) *SourceSpec {
	s := &SourceSpec{Pos: posOf(n)}
	p.mapping(n, "source", sourceKeys, func(key string, _, v *yaml.Node) {
		kp := "source." + key
		switch key {
		case "fields":
			s.Fields = p.sourceFields(v, kp)
		case "sample":
			val := p.value(v, kp)
			b, err := json.Marshal(val)
			if err != nil {
				p.add(v, kp, "the sample cannot be encoded as JSON: "+err.Error(), "")
				return
			}
			s.Sample, s.SamplePos = b, posOf(v)
		case "sample_file":
			name := p.str(v, kp)
			if name == "" {
				return
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(filepath.Dir(p.file), name)
			}
			b, err := os.ReadFile(name)
			if err != nil {
				p.add(v, kp, "cannot read the sample: "+err.Error(), "")
				return
			}
			if !json.Valid(b) {
				p.add(v, kp, "the sample file "+name+" is not valid JSON", "")
				return
			}
			s.Sample, s.SamplePos = b, posOf(v)
		}
	})
	return s
}

var sourceTypes = []string{"string", "number", "integer", "boolean", "time", "object", "array", "any"}

func (p *yamlParser) sourceFields(n *yaml.Node, path string) []*SourceField {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "expected a mapping of field name → type, got "+kindName(n), "write `fields: {email: string, points: number}`")
		return nil
	}
	var out []*SourceField
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		fp := path + "." + k.Value
		sf := &SourceField{Name: k.Value, Pos: posOf(k)}
		switch v.Kind {
		case yaml.ScalarNode:
			sf.Type = v.Value
			if !contains(sourceTypes, sf.Type) {
				hint := didYouMean(sf.Type, sourceTypes)
				if hint == "" {
					hint = "valid types: " + quoteList(sourceTypes, 10)
				}
				p.add(v, fp, "unknown type `"+sf.Type+"`", hint)
			}
		case yaml.MappingNode:
			sf.Type = "object"
			sf.Fields = p.sourceFields(v, fp)
		case yaml.SequenceNode:
			sf.Type = "array"
			if len(v.Content) != 1 {
				p.add(v, fp, "an array type lists one element type, like `[string]` or `[{sku: string}]`", "")
				break
			}
			e := deref(v.Content[0])
			if e.Kind == yaml.MappingNode {
				sf.Fields = p.sourceFields(e, fp)
				sf.Elem = "object"
			} else if e.Kind == yaml.ScalarNode && contains(sourceTypes, e.Value) {
				sf.Elem = e.Value
			} else {
				p.add(e, fp, "unknown element type "+describeNode(e), "valid types: "+quoteList(sourceTypes, 10))
			}
		default:
			p.add(v, fp, "expected a type name, got "+kindName(v), "")
		}
		out = append(out, sf)
	}
	return out
}

// value converts a YAML node to a JSON-compatible value.
func (p *yamlParser) value(n *yaml.Node, path string) any {
	v, err := nodeValue(n, 0)
	if err != nil {
		p.add(n, path, err.Error(), "")
		return nil
	}
	return v
}

func nodeValue(n *yaml.Node, depth int) (any, error) {
	if depth > 64 {
		return nil, fmt.Errorf("value is nested too deeply")
	}
	n = deref(n)
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			return canonBool(n.Value) == "true", nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				var f float64
				if err2 := n.Decode(&f); err2 != nil {
					return nil, fmt.Errorf("integer %s is out of range", n.Value)
				}
				return f, nil
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("invalid number %s", n.Value)
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("%s is not a JSON number", n.Value)
			}
			return f, nil
		default: // !!str, !!timestamp, !!binary, custom tags: the text as written
			return n.Value, nil
		}
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("object keys must be strings, got %s", kindName(k))
			}
			v, err := nodeValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML node %s", kindName(n))
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func findKey(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

func posOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

// contentPos is where a scalar's text starts (after an opening quote; the
// line after a block indicator).
func contentPos(n *yaml.Node) Pos {
	p := posOf(n)
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		p.Col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		p.Line++
	}
	return p
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func describeNode(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}

func canonBool(s string) string {
	switch s {
	case "true", "True", "TRUE":
		return "true"
	}
	return "false"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
