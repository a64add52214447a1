package mappings

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TargetSchema describes the target object a mapping writes, as far as the
// connector can describe it (the lead converts connectors.ObjectSchema).
type TargetSchema struct {
	// Object is the target object's name, for messages.
	Object string
	// Operation is what the sync does: "upsert" (fields must be createable
	// and updateable, see OmitsCreateOnlyOnUpdate), "insert" (createable),
	// "update" (updateable) or "delete" (fields are not checked). Empty:
	// upsert.
	Operation string
	// ExternalIDField is the upsert key; it must be createable but need not
	// be updateable.
	ExternalIDField string
	// OmitsCreateOnlyOnUpdate says the connector leaves fields that are
	// createable but not updateable out when an upsert updates a record that
	// exists (the Salesforce connector does, for LoyaltyProgramMember.ProgramId
	// say), so an upsert may map them: they are written on create only.
	// Default false: an upsert needs fields both createable and updateable.
	OmitsCreateOnlyOnUpdate bool
	// Fields are the object's fields.
	Fields []TargetField
}

// TargetField is one field of a target object.
type TargetField struct {
	Name string
	// Type is the target's type name: string, textarea, email, phone, url,
	// id, reference, picklist, multipicklist, double, int, currency,
	// percent, boolean, date, datetime, time, ... Unknown types are not
	// checked.
	Type       string
	Createable bool
	Updateable bool
	// Required: must be given on create (not nillable, no default).
	Required bool
	// Nillable: may be set to null.
	Nillable bool
	// Length is the maximum text length (0 = not known).
	Length int
	// Picklist lists the valid values of a picklist or multipicklist.
	Picklist []string
	// ReferenceTo lists the objects a reference field points at.
	ReferenceTo []string
}

// typeClass groups target type names.
func typeClass(t string) string {
	switch strings.ToLower(t) {
	case "string", "textarea", "email", "phone", "url", "id", "reference", "encryptedstring", "combobox", "text", "emailaddress", "locale":
		return "text"
	case "picklist":
		return "picklist"
	case "multipicklist":
		return "multipicklist"
	case "double", "int", "integer", "long", "currency", "percent", "number", "decimal", "float":
		return "number"
	case "boolean", "bool":
		return "boolean"
	case "date":
		return "date"
	case "datetime", "time":
		return "datetime"
	}
	return ""
}

// outInfo is what is statically known of a field's output.
type outInfo struct {
	kind   string // string, number, boolean, time, object, array, or "" (unknown)
	consts []constVal
}

type constVal struct {
	v    any
	pos  Pos
	what string // "value", "map value", "fallback", "default"
}

// CheckSchema checks the mapping against the target's schema: every field
// exists (with suggestions), may be written for the operation, has a type
// that fits, uses valid picklist values, and every required field is
// covered. It returns the problems found, none when the mapping fits.
func (m *Mapping) CheckSchema(schema TargetSchema) []Problem {
	op := strings.ToLower(schema.Operation)
	if op == "" {
		op = "upsert"
	}
	var probs []Problem
	add := func(pos Pos, path, msg, hint string) {
		probs = append(probs, Problem{File: m.file, Pos: pos, Path: path, Msg: msg, Hint: hint})
	}
	if op == "delete" {
		return nil
	}
	byName := make(map[string]*TargetField, len(schema.Fields))
	names := make([]string, 0, len(schema.Fields))
	for i := range schema.Fields {
		f := &schema.Fields[i]
		byName[f.Name] = f
		names = append(names, f.Name)
	}
	obj := schema.Object
	if obj == "" {
		obj = "the target object"
	}
	mapped := map[string]*field{}
	for _, f := range m.fields {
		path := "fields." + f.name
		pos := f.spec.Pos
		mapped[f.name] = f
		tf, ok := byName[f.name]
		info := outputOf(f)
		if !ok {
			// A relationship by external id: Parent__r → Parent__c, Account → AccountId.
			if info.kind == "object" || info.kind == "" {
				if ref := relationshipField(f.name, byName); ref != nil {
					mapped[ref.Name] = f
					if !writable(ref, op, schema) {
						add(pos, path, notWritable(ref, op, obj), "remove the field or change the sync's operation")
					}
					continue
				}
			}
			hint := didYouMean(f.name, names)
			if hint == "" {
				hint = "the target's fields: " + quoteList(names, 15)
			}
			add(pos, path, "unknown field `"+f.name+"` on "+obj, hint)
			continue
		}
		if !writable(tf, op, schema) {
			add(pos, path, notWritable(tf, op, obj), "remove the field or change the sync's operation")
		}
		class := typeClass(tf.Type)
		if class == "" {
			continue
		}
		if info.kind != "" && !kindFits(info.kind, class) {
			add(f.spec.Pos, path, fmt.Sprintf("the mapping produces %s, but `%s` is a %s field", article(info.kind), tf.Name, tf.Type), fitHint(class))
		}
		for _, c := range info.consts {
			if c.v == nil {
				if tf.Required && !tf.Nillable {
					add(c.pos, path, "the "+c.what+" is null, but `"+tf.Name+"` is required", "")
				}
				continue
			}
			if msg, hint := constFits(c.v, tf, class); msg != "" {
				add(c.pos, path, "the "+c.what+" "+msg, hint)
			}
		}
	}
	if op == "insert" || op == "upsert" {
		for _, tf := range schema.Fields {
			if !tf.Required || !tf.Createable {
				continue
			}
			if f, ok := mapped[tf.Name]; !ok {
				if tf.Name == schema.ExternalIDField {
					continue
				}
				add(m.spec.Pos, "fields", "required field `"+tf.Name+"` of "+obj+" is not mapped", "add `"+tf.Name+":` to `fields`")
			} else if !f.required && (!f.hasDefault || f.def == nil) && f.kind != srcConst && f.kind != srcObject {
				add(f.spec.Pos, "fields."+f.name, "`"+tf.Name+"` is required by "+obj+" but its value may be missing", "add `required: true` (a record error names the record) or a `default`")
			}
		}
	}
	sort.SliceStable(probs, func(i, j int) bool {
		a, b := probs[i].Pos, probs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return probs
}

func writable(tf *TargetField, op string, schema TargetSchema) bool {
	switch op {
	case "insert":
		return tf.Createable
	case "update":
		return tf.Updateable
	}
	if tf.Name == schema.ExternalIDField || schema.OmitsCreateOnlyOnUpdate {
		return tf.Createable
	}
	return tf.Createable && tf.Updateable
}

func notWritable(tf *TargetField, op, obj string) string {
	var what string
	switch {
	case !tf.Createable && !tf.Updateable:
		what = "is read-only"
	case !tf.Createable:
		what = "is not createable"
	default:
		what = "is not updateable"
	}
	return fmt.Sprintf("`%s` of %s %s, so an %s cannot write it", tf.Name, obj, what, op)
}

func relationshipField(name string, byName map[string]*TargetField) *TargetField {
	candidates := []string{name + "Id"}
	if base, ok := strings.CutSuffix(name, "__r"); ok {
		candidates = append(candidates, base+"__c")
	}
	for _, c := range candidates {
		if tf, ok := byName[c]; ok && strings.EqualFold(tf.Type, "reference") {
			return tf
		}
	}
	return nil
}

func kindFits(kind, class string) bool {
	switch class {
	case "text":
		return kind == "string" || kind == "number" || kind == "boolean" || kind == "time"
	case "picklist":
		return kind == "string" || kind == "number" || kind == "boolean"
	case "multipicklist":
		return kind == "string" || kind == "array"
	case "number":
		return kind == "number"
	case "boolean":
		return kind == "boolean"
	case "date", "datetime":
		return kind == "string" || kind == "time"
	}
	return true
}

func fitHint(class string) string {
	switch class {
	case "number":
		return "convert with the `number` transform or `float()` in an expression"
	case "boolean":
		return "convert with the `boolean` transform"
	case "date":
		return "format with the `date` transform"
	case "datetime":
		return "format with the `datetime` transform"
	case "multipicklist":
		return "join the values with the `join(\";\")` transform"
	}
	return "convert with the `string` transform"
}

func constFits(v any, tf *TargetField, class string) (msg, hint string) {
	kind := valueKind(v)
	if !kindFits(kind, class) {
		// A numeric text for a number field is accepted by most targets.
		if s, ok := v.(string); !(ok && class == "number" && isNumeric(s)) {
			return fmt.Sprintf("%s is %s, but `%s` is a %s field", describeValue(v), article(kind), tf.Name, tf.Type), fitHint(class)
		}
	}
	s, isText := v.(string)
	switch class {
	case "picklist", "multipicklist":
		if len(tf.Picklist) == 0 {
			break
		}
		vals := []string{s}
		if !isText {
			vals = []string{fmt.Sprint(v)}
		}
		if class == "multipicklist" {
			vals = strings.Split(s, ";")
			if arr, ok := v.([]any); ok {
				vals = vals[:0]
				for _, e := range arr {
					vals = append(vals, fmt.Sprint(e))
				}
			}
		}
		for _, x := range vals {
			if !contains(tf.Picklist, x) {
				hint := didYouMean(x, tf.Picklist)
				if hint == "" {
					hint = "valid values: " + quoteList(tf.Picklist, 20)
				}
				return fmt.Sprintf("%q is not a value of the picklist `%s`", x, tf.Name), hint
			}
		}
	case "date", "datetime":
		if isText {
			if _, err := toTime(s, time.UTC); err != nil {
				return fmt.Sprintf("%q is not a %s", s, tf.Type), "write ISO-8601, like 2024-05-01 or 2024-05-01T10:00:00Z"
			}
		}
	}
	if isText && tf.Length > 0 && len([]rune(s)) > tf.Length {
		return fmt.Sprintf("%q is longer than `%s` allows (%d characters)", truncateRunes(s, 20)+"…", tf.Name, tf.Length), ""
	}
	return "", ""
}

func isNumeric(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

func valueKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64, float64, int:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case time.Time:
		return "time"
	}
	return ""
}

// outputOf works out statically what a top-level field produces.
func outputOf(f *field) outInfo {
	var info outInfo
	fs := f.spec
	switch f.kind {
	case srcConst:
		info.kind = valueKind(f.konst)
		info.consts = append(info.consts, constVal{v: f.konst, pos: fs.KeyPos("value"), what: "value"})
	case srcPath:
		switch f.srcType {
		case "string":
			info.kind = "string"
		case "number", "integer":
			info.kind = "number"
		case "boolean":
			info.kind = "boolean"
		case "object":
			info.kind = "object"
		case "array":
			info.kind = "array"
		case "time":
			info.kind = "string"
		}
	case srcEvent:
		info.kind = "string"
	case srcExpr:
		if f.prog != nil {
			info.kind = kindOfType(f.prog.Node().Type())
		}
	case srcObject:
		info.kind = "object"
	case srcEach:
		info.kind = "array"
	}
	for _, t := range f.transforms {
		if info.kind == "array" && !t.whole {
			continue // applied to each element: still an array
		}
		if t.out != "same" {
			info.kind = t.out
		}
	}
	if f.hasMap {
		info.kind = ""
		info.consts = info.consts[:0]
		kinds := map[string]bool{}
		for _, k := range f.mapKeys {
			v := f.mapv[k]
			kinds[valueKind(v)] = true
			info.consts = append(info.consts, constVal{v: v, pos: mapEntryPos(fs, k), what: "map value for `" + k + "`"})
		}
		if f.hasFallback {
			kinds[valueKind(f.fallback)] = true
			info.consts = append(info.consts, constVal{v: f.fallback, pos: fs.KeyPos("fallback"), what: "fallback"})
		}
		delete(kinds, "")
		if len(kinds) == 1 {
			for k := range kinds {
				info.kind = k
			}
		}
	}
	if f.lookup != nil {
		info.kind = "string"
		if f.lookup.externalID != "" {
			info.kind = "object"
		}
	}
	if f.hasDefault {
		info.consts = append(info.consts, constVal{v: f.def, pos: fs.KeyPos("default"), what: "default"})
	}
	return info
}

func mapEntryPos(fs *FieldSpec, key string) Pos {
	for _, e := range fs.Map {
		if e.Key == key {
			return e.Pos
		}
	}
	return fs.KeyPos("map")
}

func kindOfType(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t == reflect.TypeOf(time.Time{}) {
		return "time"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return ""
}
