package mappings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TestResult is the outcome of one case of a mapping test file.
type TestResult struct {
	// Name is the case's name (or "case N").
	Name string
	// File and Pos say where the case is written.
	File string
	Pos  Pos
	// Passed is true when the mapping did what the case expects.
	Passed bool
	// Got is what the mapping produced (nil when it failed or filtered).
	Got map[string]any
	// Err is the error Apply returned, if any.
	Err error
	// Diff explains a failure: one line per difference, expected vs got.
	Diff string
}

// String renders the result as "PASS name" or "FAIL name (file:line)" with
// the diff indented below.
func (r TestResult) String() string {
	if r.Passed {
		return "PASS " + r.Name
	}
	return fmt.Sprintf("FAIL %s (%s:%d)\n%s", r.Name, r.File, r.Pos.Line, indent(r.Diff, "    "))
}

var (
	testFileKeys = []string{"mapping", "xref", "cases"}
	testCaseKeys = []string{"name", "event", "data", "want", "filtered", "error"}
	testEvKeys   = []string{"id", "type", "source", "subject", "time"}
)

type testCase struct {
	name     string
	pos      Pos
	in       Input
	want     map[string]any
	hasWant  bool
	filtered bool
	errSub   string
}

// RunTests runs the cases of a mapping test file against m. The file is YAML:
//
//	xref:                      # optional cross-reference for lookups
//	  salesforce/LoyaltyProgramMember/M1: 0lM000000000001
//	cases:
//	  - name: gold member
//	    event: {id: ev-1, subject: M1, time: 2024-05-01T10:00:00Z}   # optional
//	    data: {email: ann@example.com, tier: gold}                    # or a JSON string
//	    want: {Email: ann@example.com, Tier__c: Gold}                 # the whole output
//	  - name: deleted members are filtered
//	    data: {status: deleted}
//	    filtered: true
//	  - name: a member without e-mail is rejected
//	    data: {}
//	    error: "field Email: required"                                # a substring of the error
//
// The error return is for a test file that cannot be read; failing cases are
// results with Passed false.
func RunTests(m *Mapping, testFile string) ([]TestResult, error) {
	raw, err := os.ReadFile(testFile)
	if err != nil {
		return nil, fmt.Errorf("reading mapping tests: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, Problems{{File: testFile, Msg: "invalid YAML: " + err.Error()}}
	}
	p := &yamlParser{file: testFile}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Problems{{File: testFile, Pos: Pos{1, 1}, Msg: "the test file is empty", Hint: "write `cases:` with a list of {name, data, want}"}}
	}
	root := deref(doc.Content[0])
	xref := xrefFixture{}
	var cases []testCase
	p.mapping(root, "", testFileKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "mapping":
			p.str(v, key) // informative: the CLI reads it to find the mapping
		case "xref":
			if v.Kind != yaml.MappingNode {
				p.add(v, "xref", "expected a mapping of SYSTEM/OBJECT/KEY: target id, got "+kindName(v), "")
				return
			}
			{
				for i := 0; i+1 < len(v.Content); i += 2 {
					k := v.Content[i].Value
					if strings.Count(k, "/") < 2 {
						p.add(v.Content[i], "xref."+k, "an xref key is SYSTEM/OBJECT/KEY", "e.g. `salesforce/LoyaltyProgramMember/M1: 0lM000000000001`")
						continue
					}
					xref[k] = p.str(deref(v.Content[i+1]), "xref."+k)
				}
			}
		case "cases":
			if v.Kind != yaml.SequenceNode {
				p.add(v, "cases", "expected a list of cases, got "+kindName(v), "")
				return
			}
			for i, c := range v.Content {
				if tc, ok := p.testCase(deref(c), i); ok {
					cases = append(cases, tc)
				}
			}
		}
	})
	if root.Kind == yaml.MappingNode && findKey(root, "cases") == nil {
		p.add(root, "", "the test file has no `cases:`", "write `cases:` with a list of {name, data, want}")
	}
	if len(p.probs) > 0 {
		sortProblems(p.probs)
		return nil, p.probs
	}
	mm := m
	if len(xref) > 0 {
		mm = m.WithResolver(xref)
	}
	out := make([]TestResult, 0, len(cases))
	for _, tc := range cases {
		got, err := mm.Apply(context.Background(), tc.in)
		r := TestResult{Name: tc.name, File: testFile, Pos: tc.pos, Got: got, Err: err}
		r.Passed, r.Diff = judge(tc, got, err)
		out = append(out, r)
	}
	return out, nil
}

// MappingFileFor returns the mapping file a test file is for: its
// `mapping:` key (relative to the test file), or else the test file's name
// without ".test" (member-to-lpm.test.yaml → member-to-lpm.yaml).
func MappingFileFor(testFile string) (string, error) {
	raw, err := os.ReadFile(testFile)
	if err != nil {
		return "", fmt.Errorf("reading mapping tests: %w", err)
	}
	var doc struct {
		Mapping string `yaml:"mapping"`
	}
	_ = yaml.Unmarshal(raw, &doc) // a broken file is reported by RunTests
	if doc.Mapping != "" {
		if filepath.IsAbs(doc.Mapping) {
			return doc.Mapping, nil
		}
		return filepath.Join(filepath.Dir(testFile), doc.Mapping), nil
	}
	ext := filepath.Ext(testFile)
	base := strings.TrimSuffix(testFile, ext)
	if !strings.HasSuffix(base, ".test") {
		return "", fmt.Errorf("%s: no `mapping:` key, and the name does not end in .test%s", testFile, ext)
	}
	return strings.TrimSuffix(base, ".test") + ext, nil
}

// xrefFixture is a cross-reference read from a test file.
type xrefFixture map[string]string

func (x xrefFixture) Resolve(_ context.Context, system, object, key string) (string, bool, error) {
	id, ok := x[system+"/"+object+"/"+key]
	return id, ok, nil
}

func (p *yamlParser) testCase(n *yaml.Node, i int) (testCase, bool) {
	tc := testCase{name: "case " + strconv.Itoa(i+1), pos: posOf(n)}
	path := fmt.Sprintf("cases[%d]", i)
	before := len(p.probs)
	p.mapping(n, path, testCaseKeys, func(key string, _, v *yaml.Node) {
		kp := path + "." + key
		switch key {
		case "name":
			tc.name = p.str(v, kp)
		case "event":
			p.mapping(v, kp, testEvKeys, func(ek string, _, ev *yaml.Node) {
				s := p.str(ev, kp+"."+ek)
				switch ek {
				case "id":
					tc.in.ID = s
				case "type":
					tc.in.Type = s
				case "source":
					tc.in.Source = s
				case "subject":
					tc.in.Subject = s
				case "time":
					t, err := time.Parse(time.RFC3339Nano, s)
					if err != nil {
						p.add(ev, kp+".time", "not an RFC 3339 time: "+strconv.Quote(s), "write e.g. 2024-05-01T10:00:00Z")
					}
					tc.in.Time = t
				}
			})
		case "data":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				if !json.Valid([]byte(v.Value)) {
					p.add(v, kp, "data given as text must be JSON", "or write it as YAML")
					return
				}
				tc.in.Data = []byte(v.Value)
				return
			}
			val := p.value(v, kp)
			b, err := json.Marshal(val)
			if err != nil {
				p.add(v, kp, "cannot encode data as JSON: "+err.Error(), "")
				return
			}
			tc.in.Data = b
		case "want":
			val := p.value(v, kp)
			w, ok := val.(map[string]any)
			if !ok {
				p.add(v, kp, "`want` is the expected output: a mapping of target fields", "")
				return
			}
			tc.want, tc.hasWant = w, true
		case "filtered":
			if v.Tag != "!!bool" {
				p.add(v, kp, "`filtered` takes true or false", "")
				return
			}
			tc.filtered = canonBool(v.Value) == "true"
		case "error":
			tc.errSub = p.str(v, kp)
		}
	})
	if n.Kind == yaml.MappingNode && len(p.probs) == before {
		set := 0
		for _, b := range []bool{tc.hasWant, tc.filtered, tc.errSub != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			p.add(n, path, "a case expects exactly one of `want`, `filtered: true` or `error`", "")
		}
		if tc.in.Data == nil {
			p.add(n, path, "the case has no `data`", "give the event's data")
		}
	}
	return tc, len(p.probs) == before
}

func judge(tc testCase, got map[string]any, err error) (bool, string) {
	switch {
	case tc.filtered:
		if errors.Is(err, ErrFiltered) {
			return true, ""
		}
		if err != nil {
			return false, "expected the record to be filtered, got error: " + err.Error()
		}
		return false, "expected the record to be filtered, got output:\n" + indent(render(got), "  ")
	case tc.errSub != "":
		if err != nil && strings.Contains(err.Error(), tc.errSub) {
			return true, ""
		}
		if err != nil {
			return false, fmt.Sprintf("expected an error containing %q, got: %s", tc.errSub, err)
		}
		return false, fmt.Sprintf("expected an error containing %q, got output:\n%s", tc.errSub, indent(render(got), "  "))
	}
	if errors.Is(err, ErrFiltered) {
		return false, "expected output, but the record was filtered by `when`"
	}
	if err != nil {
		return false, "expected output, got error: " + err.Error()
	}
	var lines []string
	diffValues("", tc.want, got, &lines)
	if len(lines) == 0 {
		return true, ""
	}
	return false, strings.Join(lines, "\n")
}

// diffValues appends one line per difference between want and got.
func diffValues(path string, want, got any, lines *[]string) {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			p := join(path, k)
			w, inW := wm[k]
			g, inG := gm[k]
			switch {
			case !inG:
				*lines = append(*lines, fmt.Sprintf("%s: missing (want %s)", p, render(w)))
			case !inW:
				*lines = append(*lines, fmt.Sprintf("%s: unexpected %s", p, render(g)))
			default:
				diffValues(p, w, g, lines)
			}
		}
		return
	}
	wa, wok := want.([]any)
	ga, gok := got.([]any)
	if wok && gok {
		if len(wa) != len(ga) {
			*lines = append(*lines, fmt.Sprintf("%s: want %d elements %s, got %d %s", path, len(wa), render(wa), len(ga), render(ga)))
			return
		}
		for i := range wa {
			diffValues(fmt.Sprintf("%s[%d]", path, i), wa[i], ga[i], lines)
		}
		return
	}
	if !sameJSON(want, got) {
		*lines = append(*lines, fmt.Sprintf("%s: want %s, got %s", path, render(want), render(got)))
	}
}

// sameJSON compares scalars as JSON would: 3 == 3.0.
func sameJSON(a, b any) bool {
	fa, aNum := num(a)
	fb, bNum := num(b)
	if aNum || bNum {
		return aNum && bNum && (fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)))
	}
	return a == b
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// render shows a value as compact JSON.
func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
