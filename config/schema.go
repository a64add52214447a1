package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// SchemaID is the $id of the schema JSONSchema returns.
const SchemaID = "https://github.com/loyaltyhub/loyaltyhub/config/hub.schema.json"

// durationPattern matches what time.ParseDuration accepts (no sign).
const durationPattern = `^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))*)$`

// referencePattern matches a string holding a ${...} reference, which Load
// expands before it checks the value.
const referencePattern = `\$\{[^}]+\}`

// JSONSchema returns a JSON Schema (draft-07) of the config file, derived
// from the Go types and their tags: types, defaults, enums, ranges,
// required keys and a description of every key. It is for editors and the
// docs; Load remains the judge (cross references, files, connector blocks).
// Any value may also be written as a ${...} reference.
func JSONSchema() ([]byte, error) {
	root, err := typeSchema(reflect.TypeOf(Config{}), fieldInfo{})
	if err != nil {
		return nil, err
	}
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaID
	root["patternProperties"] = map[string]any{"^x-": map[string]any{"description": "Ignored: a place for YAML anchors to reuse."}}
	root["title"] = "loyaltyhub configuration"
	root["description"] = "The hub's one YAML file: sources, connectors and syncs, plus the HTTP server, bus and state store."
	root["definitions"] = map[string]any{
		"reference": map[string]any{
			"type":        "string",
			"pattern":     referencePattern,
			"description": "A ${VAR}, ${VAR:-default} or ${file:/path} reference, expanded at load.",
		},
	}
	return json.MarshalIndent(root, "", "  ")
}

func typeSchema(t reflect.Type, fi fieldInfo) (map[string]any, error) {
	s := map[string]any{}
	switch {
	case t == durationType:
		// A duration string, or a bare 0 (YAML reads "0" as an integer).
		s["type"] = []string{"string", "integer"}
		s["pattern"] = durationPattern
		s["minimum"], s["maximum"] = 0, 0
	case t == rawType:
		s["type"] = []string{"object", "null"}
	case t == mappingRefType:
		s["anyOf"] = []any{
			map[string]any{"type": "string", "minLength": 1, "description": "A mapping file, relative to the config file's directory."},
			map[string]any{"type": "object", "description": "An inline mapping block."},
		}
	case t.Kind() == reflect.Pointer:
		return typeSchema(t.Elem(), fi)
	case t.Kind() == reflect.Struct:
		props := map[string]any{}
		var required []string
		for _, f := range fields(t) {
			ps, err := typeSchema(t.Field(f.index).Type, f)
			if err != nil {
				return nil, err
			}
			props[f.key] = ps
			if f.required {
				required = append(required, f.key)
			}
		}
		s["type"] = []string{"object", "null"}
		s["properties"] = props
		s["additionalProperties"] = false
		if len(required) > 0 {
			s["required"] = required
		}
	case t.Kind() == reflect.Map:
		elem, err := typeSchema(t.Elem(), fieldInfo{})
		if err != nil {
			return nil, err
		}
		s["type"] = []string{"object", "null"}
		s["propertyNames"] = map[string]any{"pattern": NamePattern}
		s["additionalProperties"] = elem
	case t.Kind() == reflect.Slice:
		elem, err := typeSchema(t.Elem(), fieldInfo{})
		if err != nil {
			return nil, err
		}
		s["type"] = []string{"array", "null"}
		s["items"] = elem
	case t.Kind() == reflect.String:
		s["type"] = "string"
		if len(fi.enum) > 0 {
			s["enum"] = fi.enum
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Int32:
		s["type"] = "integer"
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		s["type"] = "number"
	case t.Kind() == reflect.Bool:
		s["type"] = "boolean"
	default:
		return nil, fmt.Errorf("config: no schema for %s", t)
	}
	if err := addRange(s, t, fi); err != nil {
		return nil, err
	}
	if fi.hasDef {
		d, err := defaultJSON(t, fi.def)
		if err != nil {
			return nil, err
		}
		s["default"] = d
	}
	if fi.example != "" {
		s["examples"] = []string{fi.example}
	}
	if d := describe(t, fi); d != "" {
		s["description"] = d
	}
	// A typed scalar may also be written as a reference.
	if t.Kind() != reflect.String || len(fi.enum) > 0 || t == durationType {
		if t.Kind() != reflect.Struct && t.Kind() != reflect.Map && t != rawType && t != mappingRefType {
			desc := s["description"]
			delete(s, "description")
			wrapped := map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/definitions/reference"}}}
			if desc != nil {
				wrapped["description"] = desc
			}
			if d, ok := s["default"]; ok {
				wrapped["default"] = d
				delete(s, "default")
			}
			return wrapped, nil
		}
	}
	return s, nil
}

func addRange(s map[string]any, t reflect.Type, fi fieldInfo) error {
	if t == durationType || (fi.min == "" && fi.max == "") {
		return nil // duration ranges are in the description
	}
	num := func(v string) (any, error) {
		if t.Kind() == reflect.Float64 {
			return strconv.ParseFloat(v, 64)
		}
		return strconv.ParseInt(v, 10, 64)
	}
	if fi.min != "" {
		v, err := num(fi.min)
		if err != nil {
			return err
		}
		s["minimum"] = v
	}
	if fi.max != "" {
		v, err := num(fi.max)
		if err != nil {
			return err
		}
		s["maximum"] = v
	}
	return nil
}

func defaultJSON(t reflect.Type, def string) (any, error) {
	switch {
	case t == durationType:
		if _, err := time.ParseDuration(def); err != nil {
			return nil, err
		}
		return def, nil
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Int32:
		return strconv.ParseInt(def, 10, 64)
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		return strconv.ParseFloat(def, 64)
	}
	return def, nil
}

// describe is the field's description plus its unit, range and default.
func describe(t reflect.Type, fi fieldInfo) string {
	parts := []string{}
	if fi.desc != "" {
		parts = append(parts, fi.desc)
	}
	if fi.unit != "" {
		parts = append(parts, "Unit: "+fi.unit+".")
	}
	if t == durationType {
		parts = append(parts, "A Go duration (500ms, 30s, 5m, 1h).")
	}
	if fi.min != "" || fi.max != "" {
		r := "Range: "
		switch {
		case fi.min != "" && fi.max != "":
			r += fi.min + " to " + fi.max
		case fi.min != "":
			r += "at least " + fi.min
		default:
			r += "at most " + fi.max
		}
		if fi.zero != "" {
			r += ", or 0 (" + fi.zero + ")"
		}
		parts = append(parts, r+".")
	}
	if fi.hasDef {
		d := fi.def
		if d == "" {
			d = `""`
		}
		parts = append(parts, "Default: "+d+".")
	}
	if fi.required {
		parts = append(parts, "Required.")
	}
	return strings.Join(parts, " ")
}
