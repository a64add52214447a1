package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// refKind says what kinds of reference a scalar's value came from.
type refKind uint8

const (
	refEnv  refKind = 1 << iota // ${VAR} or ${VAR:-default}
	refFile                     // ${file:PATH}
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandTree expands the references in every scalar value under n (keys are
// left alone). A scalar that fails is reported and emptied.
func (l *loader) expandTree(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.expandTree(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path
			if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
				p = joinPath(path, k.Value)
			}
			l.expandTree(v, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.expandTree(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		out, kind, err := l.expand(n.Value)
		if err != nil {
			l.errNode(n, path, "%v", err)
			n.Value = ""
			return
		}
		n.Value = out
		if kind != 0 {
			l.expanded[n] = kind
		}
	}
}

// expand replaces ${VAR}, ${VAR:-default} and ${file:PATH} in s; $${ is a
// literal ${. Errors never hold a value, only names.
func (l *loader) expand(s string) (string, refKind, error) {
	var b strings.Builder
	var kind refKind
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
			continue
		case !strings.HasPrefix(s[i:], "${"):
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", 0, errors.New("unterminated ${ reference; close it with }, or write $${ for a literal ${")
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		if file, ok := strings.CutPrefix(ref, "file:"); ok {
			v, err := l.readSecretFile(file)
			if err != nil {
				return "", 0, err
			}
			b.WriteString(v)
			kind |= refFile
			continue
		}
		name, def, hasDef := strings.Cut(ref, ":-")
		if !envName.MatchString(name) {
			return "", 0, fmt.Errorf("invalid reference name %s; write ${NAME}, ${NAME:-default} or ${file:/path/to/secret} (NAME: letters, digits and _, not starting with a digit), or $${ for a literal ${", strconv.Quote(name))
		}
		v, set := os.LookupEnv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !set:
			return "", 0, fmt.Errorf("environment variable %s is not set; set it, or give a default with ${%s:-default}", name, name)
		}
		b.WriteString(v)
		kind |= refEnv
	}
	return b.String(), kind, nil
}

// readSecretFile reads a ${file:PATH} reference: the file's content less
// its trailing newlines. A relative PATH is relative to the config file.
func (l *loader) readSecretFile(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty ${file:} reference; write ${file:/path/to/secret}")
	}
	full := l.resolve(p)
	data, err := os.ReadFile(full)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read secret file %s: %v; ${file:PATH} needs a readable file (a relative PATH is relative to the config file)", strconv.Quote(full), err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}
