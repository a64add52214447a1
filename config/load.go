package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Option changes how Load works.
type Option func(*options)

type options struct {
	schemas func(connectorType string) (json.RawMessage, bool)
	types   []string
	partial bool // LoadAll: return the partial config with the errors
}

// keepPartial makes Load return a *partialErrors (LoadAll unwraps it).
func keepPartial(o *options) { o.partial = true }

// partialErrors carries LoadAll's partial config through Load.
type partialErrors struct {
	cfg  *Config
	errs Errors
}

func (p *partialErrors) Error() string { return p.errs.Error() }
func (p *partialErrors) Unwrap() error { return p.errs }

// WithConnectorSchemas gives Load the connector types it knows and their
// config schemas: for each connector, fn(type) returns the OpenAPI 3 schema
// object (JSON) of its config block and whether the type is known. An unknown
// type is an error; a known type with an empty schema is not checked. Without
// this option connector types and blocks are not checked.
func WithConnectorSchemas(fn func(connectorType string) (schema json.RawMessage, known bool)) Option {
	return func(o *options) { o.schemas = fn }
}

// WithConnectorTypes names the known connector types, for the "known types"
// list and the "did you mean" of an unknown type. Default: the built-in
// connectors registered with connectors.Register. Without
// WithConnectorSchemas, it alone makes Load check types against the list.
func WithConnectorTypes(names ...string) Option {
	return func(o *options) { o.types = append([]string(nil), names...) }
}

// Load reads, expands, decodes, defaults and validates the config file at
// path. On problems in the file it returns Errors listing every one of them
// (file order, FILE:LINE:COL: path: message); an unreadable file gives a
// plain error.
func Load(path string, opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	l := &loader{
		file:     path,
		abs:      abs,
		dir:      filepath.Dir(abs),
		opts:     o,
		vals:     map[string]*yaml.Node{},
		keys:     map[string]*yaml.Node{},
		bad:      map[string]bool{},
		expanded: map[*yaml.Node]refKind{},
		raw:      map[string]*rawBlock{},
	}
	cfg := l.load(data)
	if len(l.errs) > 0 {
		l.errs.sort()
		if o.partial && cfg != nil {
			for name, s := range cfg.Syncs {
				if s != nil && l.isBad("syncs."+name+".mapping") {
					s.Mapping = MappingRef{}
				}
			}
			return nil, &partialErrors{cfg: cfg, errs: l.errs}
		}
		return nil, l.errs
	}
	return cfg, nil
}

// LoadAll is Load for tools that report every problem at once: with
// errors, it also returns what it could read of the config (nil when the
// file cannot be read or is not YAML). In it, a sync whose mapping
// reference is in error has a zero Mapping, so the mappings that can be
// compiled can be checked too. Never run a config that has errors.
func LoadAll(path string, opts ...Option) (*Config, error) {
	cfg, err := Load(path, append(opts, keepPartial)...)
	if err == nil {
		return cfg, nil
	}
	var pe *partialErrors
	if errors.As(err, &pe) {
		return pe.cfg, pe.errs
	}
	return nil, err
}

// loader holds the state of one Load.
type loader struct {
	file string // the path as given, for messages
	abs  string // its absolute path
	dir  string // its directory, for relative paths
	opts options
	errs Errors

	// vals and keys map a dotted path to its value node and key node.
	vals, keys map[string]*yaml.Node
	// bad marks paths already reported, so that later checks stay quiet.
	bad map[string]bool
	// expanded marks scalars whose value came from references.
	expanded map[*yaml.Node]refKind
	// raw holds the connector config blocks by path, for schema checks.
	raw map[string]*rawBlock
}

// rawBlock is one connector config block, as a JSON value and its node.
type rawBlock struct {
	node  *yaml.Node // nil when the block is absent or null
	value map[string]any
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (l *loader) load(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.addPos(Position{File: l.file, Line: 1}, "", "the file is empty; write the hub's sources, connectors and syncs (see config/example.yaml)")
			return nil
		}
		l.syntaxError(err, data)
		return nil
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		l.addPos(Position{File: l.file, Line: second.Line, Column: second.Column}, "",
			"a second YAML document; the config is one document (remove the --- separator)")
	} else if !errors.Is(err, io.EOF) {
		l.syntaxError(err, data)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		l.addPos(l.pos(root), "", "the config must be a mapping of keys (data_dir, http, sources, connectors, syncs, ...), not a "+kindName(root))
		return nil
	}
	if !l.checkAliases(root) {
		return nil // decoding would take too long, or never end
	}
	l.expandTree(root, "")
	cfg := &Config{Path: l.abs}
	l.decode(root, "", reflect.ValueOf(cfg).Elem(), fieldInfo{})
	l.validate(cfg)
	l.checkConnectors(cfg)
	return cfg
}

// syntaxError reports a YAML syntax error in data at the line yaml.v3
// gives, or at the last line of the file when it gives none (a quote or a
// bracket left open runs to the end of the file).
func (l *loader) syntaxError(err error, data []byte) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if line < 1 {
		line = lastLine(data)
	}
	msg = strings.Join(strings.Fields(msg), " ") // one problem, one line
	l.addPos(Position{File: l.file, Line: line}, "", "YAML syntax error: "+msg)
}

// lastLine is the number of data's last line, counting from 1: a final
// newline ends the last line rather than starting another.
func lastLine(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) == 0 || data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

// pos is the position of n in the file.
func (l *loader) pos(n *yaml.Node) Position {
	if n == nil {
		return Position{File: l.file}
	}
	return Position{File: l.file, Line: n.Line, Column: n.Column}
}

// addPos reports a problem and marks path bad, so that the checks of path
// and of what is under it stay quiet.
func (l *loader) addPos(p Position, path, msg string) {
	l.note(p, path, msg)
	if path != "" {
		l.bad[path] = true
	}
}

// note reports a problem without silencing later checks of path.
func (l *loader) note(p Position, path, msg string) {
	l.errs = append(l.errs, &Error{Position: p, Path: path, Message: msg})
}

// isBad reports whether path or a path above it has been reported.
func (l *loader) isBad(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if l.bad[p] {
			return true
		}
	}
	return false
}

// errNode reports a problem at node n for path, once per path.
func (l *loader) errNode(n *yaml.Node, path, format string, args ...any) {
	if l.isBad(path) {
		return
	}
	l.addPos(l.pos(n), path, fmt.Sprintf(format, args...))
}

// errAt reports a problem for path at its value node or, when the key is
// absent, at the key of the nearest enclosing value that is written.
func (l *loader) errAt(path, format string, args ...any) {
	if l.isBad(path) {
		return
	}
	l.addPos(l.posOf(path), path, fmt.Sprintf(format, args...))
}

// posOf finds where path is written, or where it would be written.
func (l *loader) posOf(path string) Position {
	if n, ok := l.vals[path]; ok {
		return l.pos(n)
	}
	for p := parentPath(path); ; p = parentPath(p) {
		if k, ok := l.keys[p]; ok {
			return l.pos(k)
		}
		if n, ok := l.vals[p]; ok {
			return l.pos(n)
		}
		if p == "" {
			return Position{File: l.file, Line: 1, Column: 1}
		}
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// resolve makes a path from the file absolute, relative to the file's
// directory.
func (l *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.dir, p)
}

// hiddenValue stands in a message for a value that came from a reference.
const hiddenValue = "(value from a ${...} reference, not shown)"

// quote shows a scalar's value in a message, or says it is hidden when it
// came from a reference (it may be a secret).
func (l *loader) quote(n *yaml.Node) string {
	if _, ok := l.expanded[n]; ok {
		return hiddenValue
	}
	return strconv.Quote(n.Value)
}

// fromRef reports whether the value written at path came from a reference.
func (l *loader) fromRef(path string) bool {
	n, ok := l.vals[path]
	if !ok {
		return false
	}
	_, ok = l.expanded[n]
	return ok
}

// quoteAt quotes s, the value at path or a part of it, for a message; it
// says the value is hidden when the value at path came from a reference.
func (l *loader) quoteAt(path, s string) string {
	if l.fromRef(path) {
		return hiddenValue
	}
	return strconv.Quote(s)
}

// showAt is quoteAt for what the loader formats itself (a number, a
// duration): s unquoted, or hidden.
func (l *loader) showAt(path, s string) string {
	if l.fromRef(path) {
		return hiddenValue
	}
	return s
}

// unknownAt is unknownMsg for got, the value at path or a part of it: with
// the value hidden, and no "did you mean" (it would tell what the value is
// near), when the value came from a reference.
func (l *loader) unknownAt(path, what, got, label string, candidates []string) string {
	if l.fromRef(path) {
		return fmt.Sprintf("unknown %s %s; %s: %s", what, hiddenValue, label, list(candidates))
	}
	return unknownMsg(what, got, label, candidates)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// MaxAliasNodes is the most nodes a config file's aliases may stand for,
// counted over the whole file: each alias counts the nodes of the value it
// names, aliases in that value included. Aliases of lists of aliases
// multiply ("billion laughs"), and the loader, its schema checks and YAML
// all walk what aliases name, so past this Load refuses the file.
const MaxAliasNodes = 10000

// aliasWalk counts the nodes reached through aliases.
type aliasWalk struct {
	l    *loader
	left int                 // nodes aliases may still stand for
	open map[*yaml.Node]bool // the nodes being walked: an alias to one loops
}

// checkAliases reports aliases that name a value they are in, or that
// stand for more than MaxAliasNodes nodes in all, at the alias written in
// the file that goes past the limit. It reports whether the file is fine.
func (l *loader) checkAliases(root *yaml.Node) bool {
	w := &aliasWalk{l: l, left: MaxAliasNodes, open: map[*yaml.Node]bool{}}
	return w.walk(root, "", nil)
}

// walk visits n at path; outer is the outermost alias n was reached
// through, nil when n is written where it is.
func (w *aliasWalk) walk(n *yaml.Node, path string, outer *yaml.Node) bool {
	if n == nil {
		return true
	}
	if outer != nil {
		if w.left--; w.left < 0 {
			w.l.addPos(w.l.pos(outer), path, fmt.Sprintf("aliases expand to more than %d nodes; "+
				"write the values out, or use fewer aliases of values that hold aliases", MaxAliasNodes))
			return false
		}
	}
	if n.Kind == yaml.AliasNode {
		if w.open[n.Alias] {
			w.l.addPos(w.l.pos(n), path, fmt.Sprintf("the alias *%s is inside the value &%s names, "+
				"so it would expand without end; move the alias out of that value", n.Value, n.Value))
			return false
		}
		if outer == nil {
			outer = n
		}
		return w.walk(n.Alias, path, outer)
	}
	w.open[n] = true
	defer delete(w.open, n)
	for i, c := range n.Content {
		p := path
		switch {
		case n.Kind == yaml.SequenceNode:
			p = fmt.Sprintf("%s[%d]", path, i)
		case n.Kind == yaml.MappingNode && i%2 == 1:
			if k := n.Content[i-1]; k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
				p = joinPath(path, k.Value)
			}
		}
		if !w.walk(c, p, outer) {
			return false
		}
	}
	return true
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

type pair struct{ k, v *yaml.Node }

// pairs returns the effective key/value pairs of mapping n: explicit keys in
// order, then keys merged in with <<, which explicit keys override. With
// report, a duplicate or non-scalar key is reported.
func (l *loader) pairs(n *yaml.Node, path string, report bool) []pair {
	n = deref(n)
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, l.mergePairs(v, path, report)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			if report {
				l.errNode(k, path, "a %s as a key; keys are plain names", kindName(k))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if report {
				l.note(l.pos(k), joinPath(path, k.Value), fmt.Sprintf("duplicate key %q; it is first set at line %d", k.Value, first.Line))
			}
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if _, dup := seen[p.k.Value]; dup {
			continue
		}
		seen[p.k.Value] = p.k
		out = append(out, p)
	}
	return out
}

func (l *loader) mergePairs(v *yaml.Node, path string, report bool) []pair {
	v = deref(v)
	switch v.Kind {
	case yaml.MappingNode:
		return l.pairs(v, path, report)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			out = append(out, l.mergePairs(item, path, report)...)
		}
		return out
	}
	if report {
		l.errNode(v, path, "<< merges a mapping or a list of mappings, not a %s", kindName(v))
	}
	return nil
}

// child finds key in mapping n (following aliases and merges).
func (l *loader) child(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for _, p := range l.pairs(n, "", false) {
		if p.k.Value == key {
			return p.k, deref(p.v)
		}
	}
	return nil, nil
}

// WithRegistry checks connector types against the built-in connectors
// registered with connectors.Register, and each connector block against the
// ConfigSchema its connector's Describe returns (New must do no I/O, and
// Describe may be called before Configure). Types starting with "plugin:"
// are not built in: give them through WithConnectorSchemas instead.
func WithRegistry(ctx context.Context) Option {
	return func(o *options) {
		o.schemas = func(t string) (json.RawMessage, bool) {
			spec, ok := connectors.Lookup(t)
			if !ok {
				return nil, false
			}
			c := spec.New(slog.New(slog.DiscardHandler))
			defer c.Close()
			d, err := c.Describe(ctx)
			if err != nil {
				return nil, true
			}
			return d.ConfigSchema, true
		}
		o.types = connectors.Names()
	}
}
