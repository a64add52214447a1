package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// YAML writes the config as YAML that Load reads back to the same config:
// every field explicit (defaults included), paths absolute, and "${" in
// values escaped as "$${". It holds secrets in clear: to show or log a
// config, use String or Redacted().YAML().
func (c *Config) YAML() ([]byte, error) {
	n, err := encodeValue(reflect.ValueOf(c).Elem())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return buf.Bytes(), nil
}

// String renders the redacted config as YAML, for logs and `validate`.
func (c *Config) String() string {
	b, err := c.Redacted().YAML()
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}

// LogValue logs the redacted config.
func (c *Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Redacted returns a copy of c with every secret replaced by Redaction:
// source secrets, the password of bus.url and store.dsn, and the secret
// values of connector blocks (see Connector.RedactedConfig).
func (c *Config) Redacted() *Config {
	r := *c
	r.Bus.URL = redactURLs(c.Bus.URL)
	r.Store.DSN = redactDSN(c.Store.DSN)
	if r.HTTP.AdminToken != "" {
		r.HTTP.AdminToken = Redaction
	}
	r.HTTP.AdminTokens = append([]AdminToken(nil), c.HTTP.AdminTokens...)
	for i := range r.HTTP.AdminTokens {
		r.HTTP.AdminTokens[i].Token = Redaction
	}
	r.Sources = make(map[string]*Source, len(c.Sources))
	for k, s := range c.Sources {
		cp := *s
		cp.Secrets = make([]Secret, len(s.Secrets))
		for i := range cp.Secrets {
			cp.Secrets[i] = Redaction
		}
		r.Sources[k] = &cp
	}
	r.Connectors = make(map[string]*Connector, len(c.Connectors))
	for k, conn := range c.Connectors {
		cp := *conn
		cp.Config = conn.RedactedConfig()
		r.Connectors[k] = &cp
	}
	r.Syncs = make(map[string]*Sync, len(c.Syncs))
	for k, s := range c.Syncs {
		cp := *s
		r.Syncs[k] = &cp
	}
	return &r
}

func scalar(tag, v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

func escapeRefs(s string) string { return strings.ReplaceAll(s, "${", "$${") }

func encodeValue(v reflect.Value) (*yaml.Node, error) {
	switch {
	case v.Type() == durationType:
		return scalar("!!str", fmtDuration(time.Duration(v.Int()))), nil
	case v.Type() == rawType:
		return encodeRaw(v.Bytes())
	case v.Type() == mappingRefType:
		ref := v.Interface().(MappingRef)
		if ref.Node != nil {
			return copyNode(ref.Node, false), nil
		}
		return scalar("!!str", escapeRefs(ref.File)), nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return scalar("!!null", "null"), nil
		}
		return encodeValue(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fields(v.Type()) {
			fv := v.Field(f.index)
			if fv.Type() == secretType && fv.String() == "" {
				continue // an empty secret is an absent one
			}
			if (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Slice) && fv.IsNil() {
				continue // an absent block or list
			}
			n, err := encodeValue(fv)
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, scalar("!!str", f.key), n)
		}
		return m, nil
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			n, err := encodeValue(v.MapIndex(reflect.ValueOf(k)))
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, scalar("!!str", k), n)
		}
		return m, nil
	case reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := 0; i < v.Len(); i++ {
			n, err := encodeValue(v.Index(i))
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	case reflect.String:
		return scalar("!!str", escapeRefs(v.String())), nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return scalar("", strconv.FormatFloat(v.Float(), 'f', -1, 64)), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	}
	return nil, fmt.Errorf("config: cannot encode %s", v.Type())
}

// encodeRaw turns a JSON connector block into block-style YAML.
func encodeRaw(b []byte) (*yaml.Node, error) {
	if len(b) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("config: connector block is not JSON: %w", err)
	}
	return jsonNode(v), nil
}

func jsonNode(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.Content = append(m.Content, scalar("!!str", k), jsonNode(x[k]))
		}
		return m
	case []any:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			s.Content = append(s.Content, jsonNode(e))
		}
		return s
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return scalar("!!int", x.String())
		}
		return scalar("!!float", x.String())
	case bool:
		return scalar("!!bool", strconv.FormatBool(x))
	case nil:
		return scalar("!!null", "null")
	case string:
		return scalar("!!str", escapeRefs(x))
	}
	return scalar("!!str", escapeRefs(fmt.Sprint(v)))
}

// copyNode deep-copies n for output, dropping comments, positions and
// aliases (the copy holds what they name). Load expands references in every
// scalar value, whatever its tag, and in no key: so "${" is escaped in
// values and left alone in keys, and all that a key holds is written as it
// was read.
func copyNode(n *yaml.Node, inKey bool) *yaml.Node {
	n = deref(n)
	cp := &yaml.Node{Kind: n.Kind, Style: n.Style &^ yaml.FlowStyle, Tag: n.Tag, Value: n.Value}
	if n.Kind == yaml.ScalarNode && !inKey {
		cp.Value = escapeRefs(n.Value)
		if cp.Value != n.Value && cp.Style&^yaml.TaggedStyle == 0 {
			cp.Style |= yaml.DoubleQuotedStyle
		}
	}
	for i, c := range n.Content {
		key := inKey || (n.Kind == yaml.MappingNode && i%2 == 0)
		cp.Content = append(cp.Content, copyNode(c, key))
	}
	return cp
}

// GoString keeps %#v from printing secrets: it is the redacted YAML.
func (c *Config) GoString() string { return c.String() }

// MarshalYAML makes yaml.Marshal(cfg) write the redacted config; YAML
// writes it in clear.
func (c *Config) MarshalYAML() (any, error) {
	return encodeValue(reflect.ValueOf(c.Redacted()).Elem())
}

// MarshalJSON makes json.Marshal(cfg) write the redacted config, with the
// keys and value forms of the YAML file (durations as "500ms"), so that it
// validates against JSONSchema.
func (c *Config) MarshalJSON() ([]byte, error) {
	n, err := encodeValue(reflect.ValueOf(c.Redacted()).Elem())
	if err != nil {
		return nil, err
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("encoding config as JSON: %w", err)
	}
	return json.Marshal(v)
}

// String names the connector and shows its redacted block.
func (c *Connector) String() string {
	return fmt.Sprintf("%s (type %s) %s", c.Name, c.Type, c.RedactedConfig())
}

// GoString keeps %#v from printing the connector's secrets.
func (c *Connector) GoString() string { return c.String() }

// LogValue logs the connector with its redacted block.
func (c *Connector) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("type", c.Type),
		slog.String("config", string(c.RedactedConfig())),
	)
}
