package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// checkConnectors checks each connector's type against the known ones and
// its config block against the type's schema, coerces values that came
// from references to the types the schema asks for, and keeps a redacted
// copy of each block.
func (l *loader) checkConnectors(c *Config) {
	schemas := map[string]*openapi3.Schema{}
	failed := map[string]bool{}
	for _, name := range sortedKeys(c.Connectors) {
		conn := c.Connectors[name]
		p := "connectors." + name
		blk := l.raw[p+".config"]
		if blk == nil {
			continue
		}
		var schema *openapi3.Schema
		if conn.Type != "" && !l.isBad(p+".type") {
			schema = l.connectorSchema(conn.Type, p+".type", schemas, failed)
		}
		if schema != nil && !l.isBad(p+".config") {
			blk.value = l.coerce(blk.value, schema, blk.node).(map[string]any)
			if b, err := json.Marshal(blk.value); err == nil {
				conn.Config = b
			}
			t := conn.Type
			if l.fromRef(p + ".type") {
				t = "" // messages say "the connector"
			}
			l.visitSchema(t, p+".config", blk, schema)
		}
		red := l.redact(blk.value, schema, blk.node)
		if b, err := json.Marshal(red); err == nil {
			conn.redacted = b
		}
	}
}

// knownTypes lists the connector types for messages.
func (l *loader) knownTypes() []string {
	if l.opts.types != nil {
		return l.opts.types
	}
	return connectors.Names()
}

// connectorSchema returns the parsed schema of type t, nil when there is
// none to check against; it reports an unknown type or a broken schema.
func (l *loader) connectorSchema(t, typePath string, cache map[string]*openapi3.Schema, failed map[string]bool) *openapi3.Schema {
	if s, ok := cache[t]; ok || failed[t] {
		return s
	}
	if IsPluginType(t) {
		// A plugin describes its schema only once started; Configure checks
		// the block then.
		return nil
	}
	if l.opts.schemas == nil {
		if l.opts.types != nil && !contains(l.opts.types, t) {
			l.errAt(typePath, "%s", l.unknownAt(typePath, "connector type", t, "known types", l.knownTypes()))
		}
		failed[t] = true
		return nil
	}
	raw, known := l.opts.schemas(t)
	if !known {
		l.errAt(typePath, "%s", l.unknownAt(typePath, "connector type", t, "known types", l.knownTypes()))
		return nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		cache[t] = nil
		return nil
	}
	var s openapi3.Schema
	err := json.Unmarshal(raw, &s)
	if err == nil {
		err = s.Validate(context.Background())
	}
	if err != nil {
		// A connector's bug, not the user's: say so, once per type.
		failed[t] = true
		l.errAt(typePath, "connector type %s has an invalid config schema (a bug in the connector, not in this file): %v", l.quoteAt(typePath, t), err)
		return nil
	}
	cache[t] = &s
	return &s
}

var unsupportedProp = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// visitSchema validates a block of a connector of type t ("" when the type
// came from a reference) and reports each schema error at the line of the
// offending key.
func (l *loader) visitSchema(t, path string, blk *rawBlock, s *openapi3.Schema) {
	err := s.VisitJSON(any(blk.value), openapi3.MultiErrors(), openapi3.DisableSchemaErrorDetails())
	if err == nil {
		return
	}
	who, keysFor := "the connector", "valid keys"
	if t != "" {
		who, keysFor = "the "+t+" connector", "valid keys for "+t
	}
	for _, e := range flattenSchemaErrors(err) {
		var se *openapi3.SchemaError
		if !errors.As(e, &se) {
			l.errAt(path, "does not match %s's schema: %v", who, e)
			continue
		}
		ptr := se.JSONPointer()
		if l.isBad(l.ptrPath(path, ptr)) {
			continue // already reported, e.g. a reference that failed
		}
		switch {
		case se.SchemaField == "required" && len(ptr) > 0:
			key := ptr[len(ptr)-1]
			keyPath := l.ptrPath(path, ptr)
			msg := fmt.Sprintf("missing; %s requires %s", who, key)
			if se.Schema != nil {
				if ps := se.Schema.Properties[key]; ps != nil && ps.Value != nil && ps.Value.Description != "" {
					msg += " (" + strings.TrimSuffix(ps.Value.Description, ".") + ")"
				}
			}
			// Point at the key of the object missing the property.
			pos := l.posOf(path)
			if k, ok := l.keys[path]; ok && len(ptr) == 1 {
				pos = l.pos(k)
			} else if parentKey := l.keyNodeAt(blk.node, ptr[:len(ptr)-1]); parentKey != nil {
				pos = l.pos(parentKey)
			} else if parent, _ := l.nodeAt(blk.node, ptr[:len(ptr)-1]); parent != nil {
				pos = l.pos(parent)
			}
			l.addPos(pos, keyPath, msg)
		case se.SchemaField == "properties" && unsupportedProp.MatchString(se.Reason):
			key := unsupportedProp.FindStringSubmatch(se.Reason)[1]
			full := append(append([]string(nil), ptr...), key)
			keyPath := l.ptrPath(path, full)
			var valid []string
			if se.Schema != nil {
				for k := range se.Schema.Properties {
					valid = append(valid, k)
				}
				sort.Strings(valid)
			}
			pos := l.posOf(path)
			if k := l.keyNodeAt(blk.node, full); k != nil {
				pos = l.pos(k)
			}
			l.addPos(pos, keyPath, unknownMsg("key", key, keysFor, valid))
		default:
			n, _ := l.nodeAt(blk.node, ptr)
			pos := l.posOf(path)
			if n != nil {
				pos = l.pos(n)
			}
			reason := se.Reason
			if reason == "" {
				reason = fmt.Sprintf("does not match the schema's %q", se.SchemaField)
			}
			l.addPos(pos, l.ptrPath(path, ptr), reason)
		}
	}
}

func flattenSchemaErrors(err error) []error {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []error
		for _, e := range me {
			out = append(out, flattenSchemaErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// ptrPath turns a JSON pointer under a block into a dotted path.
func (l *loader) ptrPath(base string, ptr []string) string {
	p := base
	for _, seg := range ptr {
		if _, err := strconv.Atoi(seg); err == nil && !strings.HasSuffix(p, ".") {
			p += "[" + seg + "]"
			continue
		}
		p = joinPath(p, seg)
	}
	return p
}

// nodeAt follows a JSON pointer from n. It returns the node at the end of
// the pointer, or nil and the deepest node found.
func (l *loader) nodeAt(n *yaml.Node, ptr []string) (found, deepest *yaml.Node) {
	cur := deref(n)
	for _, seg := range ptr {
		if cur == nil {
			return nil, nil
		}
		var next *yaml.Node
		switch cur.Kind {
		case yaml.MappingNode:
			_, next = l.child(cur, seg)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(cur.Content) {
				next = deref(cur.Content[i])
			}
		}
		if next == nil {
			return nil, cur
		}
		cur = next
	}
	return cur, cur
}

// keyNodeAt returns the key node of the last segment of ptr, when the
// pointer ends at a mapping key that is written.
func (l *loader) keyNodeAt(n *yaml.Node, ptr []string) *yaml.Node {
	if len(ptr) == 0 {
		return nil
	}
	parent, _ := l.nodeAt(n, ptr[:len(ptr)-1])
	if parent == nil || parent.Kind != yaml.MappingNode {
		return nil
	}
	k, _ := l.child(parent, ptr[len(ptr)-1])
	return k
}

// subSchemas returns the schema of property key in s, and of s's items.
func propSchema(s *openapi3.Schema, key string) *openapi3.Schema {
	if s == nil {
		return nil
	}
	if p := s.Properties[key]; p != nil {
		return p.Value
	}
	if ap := s.AdditionalProperties.Schema; ap != nil {
		return ap.Value
	}
	return nil
}

func itemSchema(s *openapi3.Schema) *openapi3.Schema {
	if s == nil || s.Items == nil {
		return nil
	}
	return s.Items.Value
}

// coerce converts strings that came from references to the integer,
// number or boolean the schema asks for: ${PORT} is written as a string but
// means a number.
func (l *loader) coerce(v any, s *openapi3.Schema, n *yaml.Node) any {
	if s == nil || n == nil {
		return v
	}
	n = deref(n)
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			_, cn := l.child(n, k)
			x[k] = l.coerce(child, propSchema(s, k), cn)
		}
	case []any:
		for i, child := range x {
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				x[i] = l.coerce(child, itemSchema(s), n.Content[i])
			}
		}
	case string:
		if _, ok := l.expanded[n]; !ok || s.Type == nil || !s.Type.IsSingle() {
			return v
		}
		switch {
		case s.Type.Is(openapi3.TypeInteger):
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return i
			}
		case s.Type.Is(openapi3.TypeNumber):
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f
			}
		case s.Type.Is(openapi3.TypeBoolean):
			if b, err := strconv.ParseBool(x); err == nil {
				return b
			}
		}
	}
	return v
}

// isSecretSchema reports whether a schema marks its value as a secret.
func isSecretSchema(s *openapi3.Schema) bool {
	if s == nil {
		return false
	}
	if s.Format == "password" || s.WriteOnly {
		return true
	}
	if b, ok := s.Extensions["x-secret"].(bool); ok && b {
		return true
	}
	return false
}

// redact returns a copy of v with secret values replaced by Redaction.
func (l *loader) redact(v any, s *openapi3.Schema, n *yaml.Node) any {
	n = deref(n)
	if n != nil && l.expanded[n]&refFile != 0 {
		return Redaction
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, child := range x {
			ps := propSchema(s, k)
			var cn *yaml.Node
			if n != nil {
				_, cn = l.child(n, k)
			}
			if child != nil && (isSecretKey(k) || isSecretSchema(ps)) {
				out[k] = Redaction
				continue
			}
			out[k] = l.redact(child, ps, cn)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, child := range x {
			var cn *yaml.Node
			if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				cn = n.Content[i]
			}
			out[i] = l.redact(child, itemSchema(s), cn)
		}
		return out
	}
	return v
}
