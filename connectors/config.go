package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DecodeConfig decodes a connector's config block into v, a pointer to a
// struct with json tags, strictly: an unknown field is an error that lists
// the valid ones, a value of the wrong JSON type names the field and the
// type it needs, trailing data is refused, and an empty block reads as {}.
// Errors start with "<name> config: "; example shows a valid block.
func DecodeConfig(name string, raw json.RawMessage, v any, example string) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("%s config: field %s is a JSON %s but must be a %s", name, typeErr.Field, typeErr.Value, jsonTypeName(typeErr.Type.Kind()))
	default:
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("%s config: unknown field %s: valid fields are %s", name, field, strings.Join(jsonFields(v), ", "))
		}
		return fmt.Errorf("%s config: not a JSON object of settings (%v): give an object such as %s", name, err, example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s config: trailing data after the JSON object", name)
	}
	return nil
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "whole number"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice:
		return "list"
	}
	return k.String()
}

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
