package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/config"
)

// FuzzConfigLoad loads arbitrary files as the hub's config, with and
// without connector schemas. Beyond "no panic":
//
//   - a failed Load returns config.Errors, one problem per line, each line
//     FILE:LINE[:COL]: message (in file order), and LoadAll reports the
//     same problems;
//   - no problem shows a value that came from a ${VAR} or ${file:PATH}
//     reference (package doc: "Values that came from a reference are never
//     shown in error messages");
//   - a config that loads is written back by YAML, which Load reads again to
//     an equal config (positions and Path aside), which YAML writes as the
//     same bytes (config.YAML: "YAML that Load reads back to the same
//     config").
//
// Run it with: go test -run '^$' -fuzz '^FuzzConfigLoad$' -fuzztime 5m ./config/
func FuzzConfigLoad(f *testing.F) {
	dir := f.TempDir()
	schema, err := os.ReadFile(filepath.Join("testdata", "salesforce.schema.json"))
	if err != nil {
		f.Fatal(err)
	}
	// The files the seeds refer to, relative to the config file.
	files := map[string]string{
		"m.yaml":                   "fields: {MembershipNumber: member_id}\n",
		"secrets/sf_client_secret": "sf-client-secret-from-a-file\n",
		"secrets/ledger":           "ledger-key-0123456789\n",
		"secrets/sf":               "sf-secret\n",
		"secrets/cdp":              "cdp-key-0123456789\r\n\n",
		"secrets/fuzz":             fuzzFileSecret + "\n",
		"keys/jwt":                 "jwt-key-7\n",
		"maps/dir/x":               "",
	}
	for _, d := range []string{"mappings", filepath.Join("testdata", "mappings")} {
		names, _ := filepath.Glob(filepath.Join(d, "*.yaml"))
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			files[filepath.Join("mappings", filepath.Base(n))] = string(b)
		}
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	// The variables the seeds refer to.
	for k, v := range map[string]string{
		"LEDGER_WEBHOOK_SECRET": "whsec-full-0123456789", "SF_CLIENT_ID": "client-1", "SF_TIMEOUT": "45",
		"STREAM": "HUB_TEST", "PREFIX": "", "PORT": "9090", "MAX_BODY": "2048", "OBJECT": "LoyaltyProgramMember",
		"PROGRAM_ID": "0lp000", "A": "left", "B": "right", "LEDGER_SECRET": "ledger-secret-0-long-enough",
		"SESSION": "x-secret-5", "EMPTY_SECRET": "", "TMO": "45", "MODE": "upsret", "MAXB": "hunter2",
		"FUZZ_SECRET": fuzzEnvSecret,
	} {
		f.Setenv(k, v)
	}

	seeds := []string{base, refsHub, secretsHub, fuzzSecretsHub}
	for _, tc := range loadCases {
		seeds = append(seeds, tc.yaml)
	}
	for _, name := range []string{"example.yaml", filepath.Join("testdata", "full.yaml")} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(b))
	}
	seeds = append(seeds,
		"http: {max_body_bytes: \"${MAX}\", shutdown_timeout: \"${T:-5s}\"}\nlog: {level: \"${LEVEL}\"}\n",
		"x-retry: &r {max_attempts: 3}\nprogress: {interval: 0}\n",
		"log:\nhttp:\nsources:\n  ledger: {insecure: true}\nconnectors:\n  crm: {type: salesforce, config: }\nsyncs:\n",
		"connectors:\n  crm:\n    type: salesforce\n    config:\n      timeout_seconds: ${TMO}\n      literal: 45\n      ${NOT_A_KEY_REF}: keys are not expanded\n",
		base+"http:\n  redact_fields: []\n  admin_tokens: [{name: ops, role: read, token: \"${FUZZ_SECRET}\"}]\n",
		strings.Replace(base, "    mapping: m.yaml\n", "    mapping:\n      fields: {A: \"$${X}\", C: !custom x, D: !!str 1, E: [1, {f: g}]}\n", 1),
		base+"http: {redact_fields: ~}\n",
		"connectors:\n  crm: {type: \"sales\\nforce\", plugin: {path: x, sha256: y}}\n",
		strings.Replace(base, "    mapping: m.yaml\n", "    mapping:\n      fields: {\"$${K}\": b}\n", 1),
		strings.Replace(base, "    mapping: m.yaml\n", "    mapping:\n      fields: {C: !custom \"$${X}\"}\n", 1),
	)
	for _, s := range seeds {
		f.Add([]byte(strings.ReplaceAll(s, "%ABS%", "secrets/cdp")))
	}

	path := filepath.Join(dir, "hub.yaml")
	again := filepath.Join(dir, "again.yaml")
	variants := []struct {
		name string
		opts []config.Option
	}{
		{"without schemas", nil},
		{"with schemas", []config.Option{
			config.WithConnectorSchemas(func(typ string) (json.RawMessage, bool) {
				switch typ {
				case "salesforce":
					return schema, true
				case "marketingcloud", "datacloud":
					return nil, true
				}
				return nil, false
			}),
			config.WithConnectorTypes("salesforce", "marketingcloud", "datacloud"),
		}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !fileRefsStayIn(data) {
			return // ${file:PATH} outside the test's directory: it could read anything (/dev/zero)
		}
		if fuzzExpandedSize(data) > 20000 {
			return // aliases of aliases: Load takes exponential time (a known problem, not this test's)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			cfg, err := config.Load(path, v.opts...)
			partial, errAll := config.LoadAll(path, v.opts...)
			if err != nil {
				checkFuzzProblems(t, v.name, path, data, err)
				if errAll == nil || errAll.Error() != err.Error() {
					t.Fatalf("%s: LoadAll reports\n%v\nLoad reports\n%v", v.name, errAll, err)
				}
				continue
			}
			if errAll != nil || !reflect.DeepEqual(fuzzNormalize(t, cfg), fuzzNormalize(t, partial)) {
				t.Fatalf("%s: Load loads, LoadAll gives %v", v.name, errAll)
			}
			out, err := cfg.YAML()
			if err != nil {
				t.Fatalf("%s: YAML of a loaded config: %v", v.name, err)
			}
			if err := os.WriteFile(again, out, 0o600); err != nil {
				t.Fatal(err)
			}
			second, err := config.Load(again, v.opts...)
			if err != nil {
				t.Fatalf("%s: loading what YAML wrote: %v\n%s", v.name, err, out)
			}
			if a, b := fuzzNormalize(t, cfg), fuzzNormalize(t, second); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: the config differs after YAML and Load:\n%s\nYAML:\n%s", v.name, fuzzDiff(a, b), out)
			}
			out2, err := second.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Fatalf("%s: YAML differs after a round trip:\n%s\n---\n%s", v.name, out, out2)
			}
		}
	})
}

// Values that only references hold: no problem may show them.
const (
	fuzzEnvSecret  = "fuzz-env-secret-5b2e0c7a9f"
	fuzzFileSecret = "fuzz-file-secret-8d41c3e6b7"
)

// fuzzSecretsHub puts references to the secret values in fields of every
// kind, valid or not for the field.
const fuzzSecretsHub = `http:
  listen: "${FUZZ_SECRET}"
  admin_token: ${FUZZ_SECRET}
  admin_tokens:
    - {name: "${FUZZ_SECRET} x", role: read, token: "${file:secrets/fuzz}"}
  redact_fields: ["${FUZZ_SECRET}."]
  max_body_bytes: ${FUZZ_SECRET}
bus: {url: "http://${FUZZ_SECRET}:4222", stream: "${FUZZ_SECRET}.x", subject_prefix: "${file:secrets/fuzz}.."}
store: {driver: postgres, dsn: "${FUZZ_SECRET}"}
log: {level: "${FUZZ_SECRET}"}
sources:
  ledger: {secrets: ["${FUZZ_SECRET}"], tolerance: "${FUZZ_SECRET}"}
connectors:
  crm:
    type: "${FUZZ_SECRET}"
    plugin: {path: ./x, sha256: 0000000000000000000000000000000000000000000000000000000000000000}
    config: {login_url: "${FUZZ_SECRET}", timeout_seconds: "${file:secrets/fuzz}"}
  geo: {type: "plugin:${FUZZ_SECRET}"}
  bin:
    type: "plugin:x"
    plugin: {path: ./x, sha256: "${FUZZ_SECRET}"}
syncs:
  m:
    from: "${FUZZ_SECRET}.member"
    to: "${file:secrets/fuzz}"
    object: X
    mode: "${FUZZ_SECRET}"
    mapping: "${FUZZ_SECRET}"
  n: {from: "ledger.${FUZZ_SECRET}", to: bin, object: X, mode: insert, mapping: m.yaml}
`

var fuzzProblemLine = regexp.MustCompile(`^(.+?):([0-9]+)(?::([0-9]+))?: (.+)$`)

// checkFuzzProblems checks the problems of a failed Load of data at path.
func checkFuzzProblems(t *testing.T, variant, path string, data []byte, err error) {
	t.Helper()
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%s: Load of a readable file fails with %T, not config.Errors: %v", variant, err, err)
	}
	if len(errs) == 0 {
		t.Fatalf("%s: Load fails with no problem", variant)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(errs) {
		t.Fatalf("%s: %d problems on %d lines:\n%v", variant, len(errs), len(lines), err)
	}
	prevLine, prevCol := 0, 0
	var leaks []string
	for i, line := range lines {
		m := fuzzProblemLine.FindStringSubmatch(line)
		if m == nil || m[1] != path {
			t.Fatalf("%s: problem %d is not %s:LINE[:COL]: message: %q", variant, i, path, line)
		}
		n, _ := strconv.Atoi(m[2])
		col := 0
		if m[3] != "" {
			col, _ = strconv.Atoi(m[3])
		}
		if n < 1 || (m[3] != "" && col < 1) {
			t.Fatalf("%s: problem %d has no position: %q", variant, i, line)
		}
		if n < prevLine || (n == prevLine && col < prevCol) {
			t.Fatalf("%s: problems out of file order:\n%v", variant, err)
		}
		prevLine, prevCol = n, col
		for _, secret := range []string{fuzzEnvSecret, fuzzFileSecret} {
			if strings.Contains(line, secret) && !bytes.Contains(data, []byte(secret)) {
				leaks = append(leaks, line)
			}
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("%s: %d problems show a value from a reference:\n%s", variant, len(leaks), strings.Join(leaks, "\n"))
	}
}

// fileRefsStayIn reports whether every ${file:PATH} in data's scalars is a
// relative path inside the config file's directory.
func fileRefsStayIn(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	ok := true
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || !ok {
			return
		}
		if n.Kind == yaml.ScalarNode {
			rest := n.Value
			for {
				i := strings.Index(rest, "${file:")
				if i < 0 {
					break
				}
				rest = rest[i+len("${file:"):]
				p, _, _ := strings.Cut(rest, "}")
				if filepath.IsAbs(p) || strings.Contains(p, "..") || strings.Contains(p, `\`) {
					ok = false
					return
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for ok {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break // Load stops here too
		}
		walk(&doc)
	}
	return ok
}

// fuzzExpandedSize is how many nodes data's documents hold with every
// alias replaced by what it names.
func fuzzExpandedSize(data []byte) int {
	sizes := map[*yaml.Node]int{}
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		if n == nil {
			return 0
		}
		if s, ok := sizes[n]; ok {
			return s
		}
		sizes[n] = 1 // a node under way counts 1, should an alias loop
		s := 1
		if n.Kind == yaml.AliasNode {
			s += size(n.Alias)
		}
		for _, c := range n.Content {
			s += size(c)
		}
		sizes[n] = s
		return s
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	total := 0
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			return total
		}
		total += size(&doc)
	}
}

// fuzzNormal is a config less what depends on where its file is.
type fuzzNormal struct {
	Top        config.Config
	Sources    map[string]config.Source
	Connectors map[string]fuzzConnector
	Syncs      map[string]config.Sync
	Mappings   map[string]any
}

// fuzzConnector is a connector's settings; its redacted copy is left out
// (YAML writes secrets in clear, so a value read from ${file:...} is no
// longer known as one after a round trip).
type fuzzConnector struct {
	Name, Type, Config string
	Plugin             *config.Plugin
	Read               *config.Read
}

// fuzzDiff shows the parts of two configs that differ.
func fuzzDiff(a, b fuzzNormal) string {
	var out strings.Builder
	show := func(what string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			fmt.Fprintf(&out, "%s:\n  first  %+v\n  second %+v\n", what, x, y)
		}
	}
	show("top level", a.Top, b.Top)
	for _, part := range []struct {
		name string
		x, y any
	}{{"sources", a.Sources, b.Sources}, {"connectors", a.Connectors, b.Connectors}, {"syncs", a.Syncs, b.Syncs}, {"inline mappings", a.Mappings, b.Mappings}} {
		x, y := reflect.ValueOf(part.x), reflect.ValueOf(part.y)
		keys := map[string]bool{}
		for _, k := range append(x.MapKeys(), y.MapKeys()...) {
			keys[k.String()] = true
		}
		for k := range keys {
			var xv, yv any
			if v := x.MapIndex(reflect.ValueOf(k)); v.IsValid() {
				xv = v.Interface()
			}
			if v := y.MapIndex(reflect.ValueOf(k)); v.IsValid() {
				yv = v.Interface()
			}
			show(part.name+"."+k, xv, yv)
		}
	}
	return out.String()
}

func fuzzNormalize(t *testing.T, c *config.Config) fuzzNormal {
	t.Helper()
	n := fuzzNormal{Top: *c, Sources: map[string]config.Source{}, Connectors: map[string]fuzzConnector{},
		Syncs: map[string]config.Sync{}, Mappings: map[string]any{}}
	n.Top.Sources, n.Top.Connectors, n.Top.Syncs, n.Top.Path = nil, nil, nil, ""
	for k, s := range c.Sources {
		cp := *s
		cp.Pos = config.Position{}
		n.Sources[k] = cp
	}
	for k, conn := range c.Connectors {
		n.Connectors[k] = fuzzConnector{Name: conn.Name, Type: conn.Type, Config: string(conn.Config), Plugin: conn.Plugin, Read: conn.Read}
	}
	for k, s := range c.Syncs {
		cp := *s
		cp.Pos = config.Position{}
		if cp.Mapping.Node != nil {
			var v any
			if err := cp.Mapping.Node.Decode(&v); err != nil {
				v = "does not decode: " + err.Error()
			}
			n.Mappings[k] = v
		}
		cp.Mapping = config.MappingRef{File: cp.Mapping.File}
		n.Syncs[k] = cp
	}
	return n
}
