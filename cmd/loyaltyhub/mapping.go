package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/loyaltyhub/loyaltyhub/config"
	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/mappings"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// mappingCmd holds the mapping tools: `mapping test` and `mapping preview`.
func mappingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mapping", Short: "Test mappings and preview what a sync would write"}
	cmd.AddCommand(mappingTestCmd(), mappingPreviewCmd())
	return cmd
}

// errTestsFailed is returned when a mapping test case fails; the failures
// are already printed.
var errTestsFailed = errors.New("mapping tests failed")

func mappingTestCmd() *cobra.Command {
	var (
		path, syncName, input string
		xrefs                 []string
	)
	cmd := &cobra.Command{
		Use:   "test [-c FILE] [--sync NAME] [--input FILE] [TEST_FILE...]",
		Short: "Run mapping test files, or map one input and print the record as JSON",
		Long: `Without --input: run the test file of every mapping the config uses (for a mapping file
X.yaml, every *.test.yaml beside it whose mapping is X.yaml, by default X.test.yaml; for an
inline mapping of sync NAME in CONFIG.yaml, CONFIG.NAME.test.yaml beside the config). With
TEST_FILE arguments, run those files instead, each against its mapping (its mapping: key, or
its name without .test); no config is needed. Every case prints PASS or FAIL with the
differences, expected vs got; any failure exits with status 1.

With --input FILE: map FILE through the mapping of sync --sync and print the output record
as JSON (or the error). FILE holds a CloudEvent (it has "specversion") or only its data.
A segment membership event prints one record per member, as the pipeline expands it.
Lookups resolve through --xref SYSTEM/OBJECT/KEY=ID, then the state store of the config.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			if input != "" {
				if len(args) > 0 {
					return errors.New("give either --input or test files, not both")
				}
				return mapInput(ctx, out, path, syncName, input, xrefs)
			}
			var suites []*testSuite
			var untested []string
			if len(args) > 0 {
				var err error
				if suites, err = suitesForFiles(args); err != nil {
					return err
				}
			} else {
				cfg, maps, err := loadConfig(ctx, path, newLogger(io.Discard, config.Log{Level: "error"}))
				if err != nil {
					return fmt.Errorf("%s is not valid:\n%w", path, err)
				}
				if suites, untested, err = suitesForConfig(cfg, maps, syncName); err != nil {
					return err
				}
			}
			return runSuites(out, suites, untested)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "loyaltyhub.yaml", "config file")
	cmd.Flags().StringVar(&syncName, "sync", "", "the sync whose mapping to use (required with --input when the config has several syncs)")
	cmd.Flags().StringVar(&input, "input", "", "a JSON file: a CloudEvent, or only its data")
	cmd.Flags().StringArrayVar(&xrefs, "xref", nil, "a cross-reference entry for lookups, SYSTEM/OBJECT/KEY=ID (repeatable)")
	return cmd
}

// testSuite is one mapping test file and the mapping it tests.
type testSuite struct {
	file    string // as shown and read (relative to the working directory when below it)
	mapping *mappings.Mapping
	label   string // what the file tests: "member-to-lpm.yaml, sync members-to-crm"
	syncs   []string
}

// suitesForConfig finds the test files of the mappings the config's syncs
// use (only sync only, when given). untested lists the syncs whose mapping
// has no test file, and where one would go.
func suitesForConfig(cfg *config.Config, maps *compiled, only string) (suites []*testSuite, untested []string, err error) {
	if only != "" {
		if _, ok := cfg.Syncs[only]; !ok {
			return nil, nil, fmt.Errorf("--sync %s: no such sync; the config's syncs: %s", only, strings.Join(syncNames(cfg), ", "))
		}
	}
	byFile := map[string]*testSuite{}
	add := func(file string, m *mappings.Mapping, label, sync string) {
		if s, ok := byFile[file]; ok {
			s.syncs = append(s.syncs, sync)
			return
		}
		s := &testSuite{file: displayPath(file), mapping: m, label: label, syncs: []string{sync}}
		byFile[file] = s
		suites = append(suites, s)
	}
	for _, s := range cfg.SyncList() {
		if only != "" && s.Name != only {
			continue
		}
		m := maps.mappings[s.Name]
		if m == nil {
			continue
		}
		mf, _ := filepath.Abs(m.Spec().File)
		if s.Mapping.Inline() && m.Spec().File == s.Mapping.SourceFile {
			tf := inlineTestFile(s)
			if fileExists(tf) {
				add(tf, m, "inline mapping", s.Name)
			} else {
				untested = append(untested, fmt.Sprintf("sync %s: no tests for its inline mapping (write them in %s)", s.Name, displayPath(tf)))
			}
			continue
		}
		files, err := testFilesFor(mf)
		if err != nil {
			return nil, nil, err
		}
		if len(files) == 0 {
			untested = append(untested, fmt.Sprintf("sync %s: no tests for %s (write them in %s)", s.Name, displayPath(mf), displayPath(defaultTestFile(mf))))
		}
		for _, tf := range files {
			add(tf, m, filepath.Base(mf), s.Name)
		}
	}
	return suites, untested, nil
}

// inlineTestFile is where the tests of an inline mapping live: beside the
// config, named CONFIG.SYNC.test.yaml (hub.yaml, sync members →
// hub.members.test.yaml).
func inlineTestFile(s *config.Sync) string {
	cf, _ := filepath.Abs(s.Mapping.SourceFile)
	base := strings.TrimSuffix(filepath.Base(cf), filepath.Ext(cf))
	return filepath.Join(filepath.Dir(cf), base+"."+s.Name+".test.yaml")
}

// defaultTestFile is X.test.yaml for mapping file X.yaml.
func defaultTestFile(mappingFile string) string {
	ext := filepath.Ext(mappingFile)
	return strings.TrimSuffix(mappingFile, ext) + ".test" + ext
}

// testFilesFor lists the test files beside mappingFile that test it: every
// *.test.yaml / *.test.yml whose `mapping:` key (or name without .test)
// is mappingFile.
func testFilesFor(mappingFile string) ([]string, error) {
	var out []string
	for _, pat := range []string{"*.test.yaml", "*.test.yml"} {
		found, err := filepath.Glob(filepath.Join(filepath.Dir(mappingFile), pat))
		if err != nil {
			return nil, err
		}
		for _, tf := range found {
			mf, err := mappings.MappingFileFor(tf)
			if err != nil {
				continue
			}
			if abs, _ := filepath.Abs(mf); abs == mappingFile {
				out = append(out, tf)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// suitesForFiles compiles the mapping of each test file named.
func suitesForFiles(files []string) ([]*testSuite, error) {
	var suites []*testSuite
	var errs []error
	for _, tf := range files {
		mf, err := mappings.MappingFileFor(tf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec, err := mappings.ParseFile(mf)
		var m *mappings.Mapping
		if err == nil {
			m, err = mappings.Compile(spec)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: its mapping %s does not compile:\n%w", tf, mf, err))
			continue
		}
		suites = append(suites, &testSuite{file: tf, mapping: m, label: filepath.Base(mf)})
	}
	return suites, errors.Join(errs...)
}

// runSuites runs every suite and prints each case; it returns errTestsFailed
// when a case fails or a test file cannot be read.
func runSuites(w io.Writer, suites []*testSuite, untested []string) error {
	passed, failed, broken := 0, 0, 0
	for _, s := range suites {
		label := s.label
		if len(s.syncs) > 0 {
			label += ", " + plural("sync", s.syncs)
		}
		fmt.Fprintf(w, "%s (%s)\n", s.file, label)
		// Lookups without an xref: block in the file find no entry.
		results, err := mappings.RunTests(s.mapping.WithResolver(noXref{}), s.file)
		if err != nil {
			broken++
			fmt.Fprintf(w, "  BROKEN the test file cannot be run:\n%s\n", indentLines(err.Error(), "    "))
			continue
		}
		if len(results) == 0 {
			fmt.Fprintln(w, "  (no cases)")
		}
		for _, r := range results {
			if r.Passed {
				passed++
			} else {
				failed++
			}
			fmt.Fprintln(w, indentLines(r.String(), "  "))
		}
	}
	for _, u := range untested {
		fmt.Fprintln(w, u)
	}
	fmt.Fprintf(w, "%d passed, %d failed", passed, failed)
	if broken > 0 {
		fmt.Fprintf(w, ", %d test file(s) broken", broken)
	}
	fmt.Fprintf(w, " (%d test file(s))\n", len(suites))
	if failed > 0 || broken > 0 {
		return errTestsFailed
	}
	return nil
}

// noXref is an empty cross-reference.
type noXref struct{}

func (noXref) Resolve(context.Context, string, string, string) (string, bool, error) {
	return "", false, nil
}

// toolXref is the cross-reference of the mapping tools: entries given with
// --xref first, then the config's state store, opened read-only in spirit
// (only LookupXref is called) on the first lookup and only if it exists.
type toolXref struct {
	fixed map[string]string
	cfg   *config.Config

	once sync.Once
	st   store.Store
	err  error
}

func newToolXref(cfg *config.Config, flags []string) (*toolXref, error) {
	x := &toolXref{fixed: map[string]string{}, cfg: cfg}
	for _, f := range flags {
		k, id, ok := strings.Cut(f, "=")
		if !ok || strings.Count(k, "/") < 2 || id == "" {
			return nil, fmt.Errorf("--xref %q: write SYSTEM/OBJECT/KEY=ID, e.g. crm/LoyaltyProgramMember/M-000001=0lMEm0000000001AAA", f)
		}
		x.fixed[k] = id
	}
	return x, nil
}

// Resolve implements mappings.Resolver.
func (x *toolXref) Resolve(ctx context.Context, system, object, key string) (string, bool, error) {
	if id, ok := x.fixed[system+"/"+object+"/"+key]; ok {
		return id, true, nil
	}
	if x.cfg == nil {
		return "", false, nil
	}
	st, err := x.store(ctx)
	if err != nil {
		return "", false, fmt.Errorf("reading the cross-reference in the state store: %w", err)
	}
	if st == nil {
		return "", false, nil
	}
	var keys connectors.KeyMatch
	if c := x.cfg.Connectors[system]; c != nil {
		keys = builtinKeys(ctx, c)
	}
	return st.LookupXref(ctx, system, object, keys.Fold(key))
}

// store opens the config's state store on first use; nil when there is
// none yet (or no config).
func (x *toolXref) store(ctx context.Context) (store.Store, error) {
	if x.cfg == nil {
		return nil, nil
	}
	x.once.Do(func() { x.st, x.err = openStoreIfPresent(ctx, x.cfg) })
	return x.st, x.err
}

func (x *toolXref) close() {
	if x.st != nil {
		_ = x.st.Close()
	}
}

// openStoreIfPresent opens the config's state store; a SQLite store that
// does not exist yet (the hub never ran) gives nil, not a new file.
func openStoreIfPresent(ctx context.Context, cfg *config.Config) (store.Store, error) {
	dsn := cfg.Store.DSN
	if cfg.Store.Driver == config.DriverSQLite {
		if dsn == "" {
			dsn = filepath.Join(cfg.DataDir, "state.db")
		}
		if !fileExists(dsn) {
			return nil, nil
		}
	}
	return store.Open(ctx, cfg.Store.Driver, dsn, nil)
}

// inputRecord is one record a sync would get from an input file.
type inputRecord struct {
	key string
	in  mappings.Input
	// del: the sync deletes the record (a deleted event, a member removed
	// from a segment); the mapping is not applied.
	del bool
}

// readInput reads a CloudEvent (detected by "specversion") or only its
// data, and returns the records sync s would map from it: one, or one per
// member of a segment membership change. key is the entity id for a file
// that holds only data.
func readInput(file string, s *config.Sync, key string) ([]inputRecord, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--input: %w", err)
	}
	return parseInput(raw, "--input "+file, s, key)
}

// parseInput is readInput on raw, which what names in errors.
func parseInput(raw []byte, what string, s *config.Sync, key string) ([]inputRecord, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object (a CloudEvent or its data): %w", what, err)
	}
	ev := &event.Event{Subject: key, Data: raw}
	if _, isEvent := probe["specversion"]; isEvent {
		ev = &event.Event{}
		if err := json.Unmarshal(raw, ev); err != nil {
			return nil, fmt.Errorf("%s: not a valid CloudEvent: %w", what, err)
		}
		if !gjson.ValidBytes(ev.Data) || !gjson.ParseBytes(ev.Data).IsObject() {
			return nil, fmt.Errorf("%s: the event's data must be a JSON object", what)
		}
		if entity := ev.Entity(); entity == "" {
			return nil, fmt.Errorf("%s: unknown event type %q; the hub's types: %s", what, ev.Type, strings.Join(eventTypes(), ", "))
		} else if entity != s.Entity {
			return nil, fmt.Errorf("%s: a %s event (%s), but sync %s reads %s events (from: %s)", what, entity, ev.Type, s.Name, s.Entity, s.From)
		}
		if key != "" && ev.Subject != key && s.Entity != event.EntitySegment {
			return nil, fmt.Errorf("%s: the event is for subject %q, not --key %q", what, ev.Subject, key)
		}
	}
	return eventRecords(ev, s), nil
}

// eventRecords returns the records sync s gets from ev, as the pipeline
// does: one, or one per member of a segment membership change.
func eventRecords(ev *event.Event, s *config.Sync) []inputRecord {
	data := gjson.ParseBytes(ev.Data)
	if s.Entity == event.EntitySegment && !data.Get("member_id").Exists() {
		return segmentRecords(ev, data)
	}
	return []inputRecord{{
		key: ev.Subject,
		in:  mappings.Input{ID: ev.ID, Type: ev.Type, Source: ev.Source, Subject: ev.Subject, Time: ev.Time, Data: ev.Data},
		del: ev.Deleted() || s.Mode == connectors.Delete,
	}}
}

// segmentRecords expands a segment membership change as the pipeline does:
// one record per member, keyed SEGMENT:MEMBER, the mapping seeing
// {segment_id, member_id, version, change}; removed members are deleted.
func segmentRecords(ev *event.Event, data gjson.Result) []inputRecord {
	segment := data.Get("segment_id").String()
	if segment == "" {
		segment = ev.Subject
	}
	version := data.Get("version").Int()
	var out []inputRecord
	for _, change := range []string{"added", "removed"} {
		for _, m := range data.Get(change).Array() {
			member := m.String()
			k := segment + ":" + member
			d, _ := json.Marshal(map[string]any{"segment_id": segment, "member_id": member, "version": version, "change": change})
			out = append(out, inputRecord{key: k, del: change == "removed",
				in: mappings.Input{ID: ev.ID, Type: ev.Type, Source: ev.Source, Subject: k, Time: ev.Time, Data: d}})
		}
	}
	return out
}

func eventTypes() []string {
	out := make([]string, 0, len(event.Types))
	for t := range event.Types {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// pickSync returns the sync named, or the only one.
func pickSync(cfg *config.Config, name string) (*config.Sync, error) {
	if name == "" {
		if len(cfg.Syncs) == 1 {
			return cfg.SyncList()[0], nil
		}
		return nil, fmt.Errorf("--sync is required: the config has %d syncs: %s", len(cfg.Syncs), strings.Join(syncNames(cfg), ", "))
	}
	s, ok := cfg.Syncs[name]
	if !ok {
		return nil, fmt.Errorf("--sync %s: no such sync; the config's syncs: %s", name, strings.Join(syncNames(cfg), ", "))
	}
	return s, nil
}

func syncNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Syncs))
	for _, s := range cfg.SyncList() {
		out = append(out, s.Name)
	}
	return out
}

// errMappingFailed is returned when --input maps to an error; the error is
// already printed as JSON.
var errMappingFailed = errors.New("the mapping failed on the input")

// mapInput maps an input file through a sync's mapping and prints the
// record as JSON: the fields in the mapping's order; or {"filtered": true},
// {"delete": true} or {"error": ..., "field": ...}. A segment change prints
// a list with one entry (and its key) per member.
func mapInput(ctx context.Context, w io.Writer, path, syncName, input string, xrefs []string) error {
	cfg, maps, err := loadConfig(ctx, path, newLogger(io.Discard, config.Log{Level: "error"}))
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", path, err)
	}
	s, err := pickSync(cfg, syncName)
	if err != nil {
		return err
	}
	xref, err := newToolXref(cfg, xrefs)
	if err != nil {
		return err
	}
	defer xref.close()
	m := maps.mappings[s.Name].WithResolver(xref)
	recs, err := readInput(input, s, "")
	if err != nil {
		return err
	}
	failed := false
	entries := make([]json.RawMessage, 0, len(recs))
	for _, r := range recs {
		var entry orderedObject
		if len(recs) > 1 || s.Entity == event.EntitySegment {
			entry = append(entry, kv{"key", r.key})
		}
		switch {
		case r.del:
			entry = append(entry, kv{"delete", true})
		default:
			fields, err := m.Apply(ctx, r.in)
			entry = append(entry, outcome(m, fields, err)...)
			failed = failed || (err != nil && !errors.Is(err, mappings.ErrFiltered))
		}
		b, _ := entry.MarshalJSON()
		entries = append(entries, b)
	}
	var outJSON []byte
	if len(recs) == 1 && s.Entity != event.EntitySegment {
		outJSON = entries[0]
	} else {
		outJSON, _ = json.Marshal(entries)
	}
	var buf bytes.Buffer
	_ = json.Indent(&buf, outJSON, "", "  ")
	fmt.Fprintln(w, buf.String())
	if failed {
		return errMappingFailed
	}
	return nil
}

// outcome renders Apply's result: the fields in mapping order, or what
// went wrong.
func outcome(m *mappings.Mapping, fields map[string]any, err error) orderedObject {
	var rec *mappings.RecordError
	switch {
	case err == nil:
		return orderedFields(m, fields)
	case errors.Is(err, mappings.ErrFiltered):
		return orderedObject{{"filtered", true}, {"reason", "the mapping's `when` is false for this record"}}
	case errors.Is(err, mappings.ErrUnresolved):
		return orderedObject{{"error", err.Error()}, {"retry", true}}
	case errors.As(err, &rec):
		return orderedObject{{"error", err.Error()}, {"field", rec.Field}}
	}
	return orderedObject{{"error", err.Error()}, {"retry", true}}
}

// orderedFields lists a mapped record's fields in the mapping's order.
func orderedFields(m *mappings.Mapping, fields map[string]any) orderedObject {
	out := make(orderedObject, 0, len(fields))
	seen := map[string]bool{}
	for _, name := range m.Fields() {
		if v, ok := fields[name]; ok {
			out = append(out, kv{name, v})
			seen[name] = true
		}
	}
	rest := make([]string, 0)
	for k := range fields {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, kv{k, fields[k]})
	}
	return out
}

type kv struct {
	k string
	v any
}

// orderedObject is a JSON object whose keys keep their order.
type orderedObject []kv

// MarshalJSON implements json.Marshaler.
func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func indentLines(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

func mappingPreviewCmd() *cobra.Command {
	var (
		path, syncName, input, key string
		asJSON                     bool
		xrefs                      []string
		hub                        adminFlags
	)
	cmd := &cobra.Command{
		Use:   "preview -c FILE --sync NAME (--key ID | --input EVENT.json [--key ID]) [--json]",
		Short: "Show what a sync would change in the target for one record, without writing",
		Long: `Map one record through a sync's mapping, read the record it would write from the target
(through the connector's GetRecord, by the sync's external_id), and show each field's current
and mapped value and whether it would change. Nothing is written.

With --key only, the record is the newest event for that key that the running hub's bus holds,
fetched through the admin API (GET /v1/syncs/{sync}/latest-event; --hub and --token default to
the config's http.listen and http.admin_token). For a segment sync the key is SEGMENT:MEMBER.
With --input, the event comes from a file instead (a CloudEvent, or only its data with --key),
and the hub need not run; --key then picks the record (default: the event's subject).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" && key == "" {
				return errors.New("give --key ID (the newest event for that key in the running hub's bus) or --input EVENT.json (an event from a file)")
			}
			var fetch fetchEvent
			if input != "" {
				fetch = func(*config.Config, *config.Sync) ([]byte, string, error) {
					raw, err := os.ReadFile(input)
					if err != nil {
						return nil, "", fmt.Errorf("--input: %w", err)
					}
					return raw, "--input " + input, nil
				}
			} else {
				fetch = func(cfg *config.Config, s *config.Sync) ([]byte, string, error) {
					return latestEvent(cmd, hubFlagsFor(hub, cfg), s.Name, key)
				}
			}
			p, err := previewRecord(cmd.Context(), path, syncName, fetch, key, xrefs)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(p, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			} else {
				p.printTable(cmd.OutOrStdout())
			}
			if p.Error != "" {
				return errMappingFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "loyaltyhub.yaml", "config file")
	cmd.Flags().StringVar(&syncName, "sync", "", "the sync to preview (required when the config has several syncs)")
	cmd.Flags().StringVar(&input, "input", "", "the event from a file: a CloudEvent JSON file, or only its data (then give --key)")
	cmd.Flags().StringVar(&key, "key", "", "the record's key (the entity id; SEGMENT:MEMBER for a segment sync)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringArrayVar(&xrefs, "xref", nil, "a cross-reference entry for lookups, SYSTEM/OBJECT/KEY=ID (repeatable)")
	cmd.Flags().StringVar(&hub.hub, "hub", "", "the running hub's base URL (default: from the config's http.listen)")
	cmd.Flags().StringVar(&hub.token, "token", os.Getenv("LOYALTYHUB_ADMIN_TOKEN"), "the hub's admin token (default $LOYALTYHUB_ADMIN_TOKEN, else the config's http.admin_token)")
	return cmd
}

// fetchEvent returns the event to preview and what to call it in errors.
type fetchEvent func(cfg *config.Config, s *config.Sync) (raw []byte, what string, err error)

// hubFlagsFor fills the admin flags the user left out from the config.
func hubFlagsFor(f adminFlags, cfg *config.Config) adminFlags {
	if f.hub == "" {
		host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
		if err != nil {
			host, port = "127.0.0.1", "8080"
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		f.hub = "http://" + net.JoinHostPort(host, port)
	}
	if f.token == "" {
		f.token = cfg.HTTP.AdminToken.Value()
	}
	return f
}

// latestEvent asks the running hub for the newest event of key on sync.
func latestEvent(cmd *cobra.Command, f adminFlags, sync, key string) ([]byte, string, error) {
	var out struct {
		Topic string          `json:"topic"`
		Event json.RawMessage `json:"event"`
	}
	resp, err := f.client().R().SetContext(cmd.Context()).SetResult(&out).
		SetPathParam("sync", sync).SetQueryParam("key", key).Get("/v1/syncs/{sync}/latest-event")
	if err != nil {
		return nil, "", fmt.Errorf("--key %s: the event is read from the running hub, which does not answer at %s (%w); start it (loyaltyhub run), give --hub, or give the event with --input", key, f.hub, err)
	}
	if resp.IsError() {
		return nil, "", fmt.Errorf("--key %s: the hub at %s answered %w", key, f.hub, problemOf(resp))
	}
	return out.Event, fmt.Sprintf("the newest event of %q on %s", key, out.Topic), nil
}

// preview is what a sync would do to one record of its target.
type preview struct {
	Sync       string `json:"sync"`
	Connector  string `json:"connector"`
	Object     string `json:"object"`
	Mode       string `json:"mode"`
	ExternalID string `json:"external_id,omitempty"`
	Key        string `json:"key"`
	// From says where the event came from: the file, or the hub's bus.
	From string `json:"from"`
	// EventID and Version identify the event previewed.
	EventID string `json:"event_id,omitempty"`
	Version *int64 `json:"version,omitempty"`
	// Guard is the sync's version-guard row for the key, when the state
	// store has one: what the sync has already begun or applied.
	Guard *previewGuard `json:"guard,omitempty"`
	// Found says whether the target holds the record (nil: not looked up).
	Found    *bool  `json:"found,omitempty"`
	TargetID string `json:"target_id,omitempty"`
	// Action is what the write would do: create, update, delete, nothing.
	Action string `json:"action"`
	// Why explains the action.
	Why string `json:"why,omitempty"`
	// Error is the mapping's error for this record, if any.
	Error  string         `json:"error,omitempty"`
	Fields []previewField `json:"fields,omitempty"`
}

// previewGuard is the version guard's word on a key.
type previewGuard struct {
	Version   int64     `json:"version"`
	State     string    `json:"state"`
	EventID   string    `json:"event_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// guardSays reads the key's version-guard row from the state store (when
// there is one) into p, and says why the sync would skip the event, as its
// version guard would: "" when it would not.
func guardSays(ctx context.Context, x *toolXref, sync, key string, p *preview) (string, error) {
	st, err := x.store(ctx)
	if err != nil || st == nil {
		return "", err
	}
	var keys connectors.KeyMatch
	if s := x.cfg.Syncs[sync]; s != nil && x.cfg.Connectors[s.To] != nil {
		keys = builtinKeys(ctx, x.cfg.Connectors[s.To]) // the guard keeps keys as the target compares them
	}
	g, ok, err := st.GuardOf(ctx, sync, keys.Fold(key))
	if err != nil {
		return "", fmt.Errorf("reading the version guard in the state store: %w", err)
	}
	if !ok {
		return "", nil
	}
	p.Guard = &previewGuard{Version: g.Version, State: g.State, EventID: g.EventID, UpdatedAt: g.UpdatedAt}
	if p.Version == nil {
		return "", nil
	}
	v := *p.Version
	switch {
	case v < g.Version:
		return fmt.Sprintf("it skips this event as stale: its version %d is older than version %d, already %s", v, g.Version, g.State), nil
	case v == g.Version && g.State != store.GuardPending:
		return fmt.Sprintf("it skips this event as a duplicate: version %d is already %s, by event %s", v, g.State, g.EventID), nil
	}
	return "", nil
}

// previewField is one target field: its current and mapped value.
type previewField struct {
	Field string `json:"field"`
	// Current is the target's value (absent when the record or the field
	// is not there).
	Current any  `json:"current"`
	HasCur  bool `json:"has_current"`
	// Mapped is the value the sync would send (absent when the mapping
	// leaves the field out).
	Mapped    any  `json:"mapped"`
	HasMapped bool `json:"has_mapped"`
	// Changed: nil when it cannot be told (a relationship by external id).
	Changed *bool `json:"changed"`
	// Note explains a field that is not sent, or why Changed is unknown.
	Note string `json:"note,omitempty"`
}

// previewRecord maps the input and reads the target's record; it writes
// nothing.
func previewRecord(ctx context.Context, path, syncName string, fetch fetchEvent, key string, xrefs []string) (*preview, error) {
	logger := newLogger(os.Stderr, config.Log{Level: "error"})
	cfg, maps, err := loadConfig(ctx, path, logger)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid:\n%w", path, err)
	}
	s, err := pickSync(cfg, syncName)
	if err != nil {
		return nil, err
	}
	xref, err := newToolXref(cfg, xrefs)
	if err != nil {
		return nil, err
	}
	defer xref.close()
	m := maps.mappings[s.Name].WithResolver(xref)

	raw, what, err := fetch(cfg, s)
	if err != nil {
		return nil, err
	}
	recs, err := parseInput(raw, what, s, key)
	if err != nil {
		return nil, err
	}
	var rec *inputRecord
	for i := range recs {
		if key == "" || recs[i].key == key {
			rec = &recs[i]
			break
		}
	}
	switch {
	case rec == nil && len(recs) == 0:
		return nil, fmt.Errorf("%s: the event holds no record for sync %s", what, s.Name)
	case rec == nil:
		keys := make([]string, len(recs))
		for i, r := range recs {
			keys[i] = r.key
		}
		return nil, fmt.Errorf("--key %s: the event holds no such record; its keys: %s", key, strings.Join(keys, ", "))
	case len(recs) > 1 && key == "":
		return nil, fmt.Errorf("--key is required: the event holds %d records (%s, ...)", len(recs), recs[0].key)
	case rec.key == "":
		return nil, errors.New("--key is required: the input holds only data, and the key is the entity id")
	}

	p := &preview{Sync: s.Name, Connector: s.To, Object: s.Object, Mode: string(s.Mode), ExternalID: s.ExternalID, Key: rec.key,
		From: what, EventID: rec.in.ID}
	if v := gjson.GetBytes(rec.in.Data, "version"); v.Exists() {
		p.Version = ptr(v.Int())
	}
	skipWhy, err := guardSays(ctx, xref, s.Name, rec.key, p)
	if err != nil {
		return nil, err
	}
	var mapped map[string]any
	errWhy := ""
	if !rec.del {
		mapped, err = m.Apply(ctx, rec.in)
		var recErr *mappings.RecordError
		switch {
		case errors.Is(err, mappings.ErrFiltered):
			p.Action, p.Why = "nothing", "the mapping's `when` is false for this record: the sync skips it as filtered"
			return p, nil
		case errors.Is(err, mappings.ErrUnresolved):
			p.Error, errWhy = err.Error(), "a lookup has no cross-reference entry yet: the sync retries the record until it has"
		case errors.As(err, &recErr):
			p.Error, errWhy = err.Error(), "the mapping fails on this record: the sync dead-letters it"
		case err != nil:
			p.Error, errWhy = err.Error(), "the cross-reference cannot be read: the sync retries the record"
		}
	}

	c := cfg.Connectors[s.To]
	conn, err := startConnector(ctx, c, logger)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Configure(ctx, c.Config); err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.Name, err)
	}
	var current map[string]any
	var found bool
	if s.ExternalID == "" {
		p.Why = "the sync has no external_id, so the target's record cannot be found by key"
	} else {
		current, found, err = conn.GetRecord(ctx, s.Object, s.ExternalID, rec.key)
		if err != nil {
			if errors.Is(err, connectors.ErrCannotReadRecords) {
				return nil, fmt.Errorf("connector %s (%s) cannot read records, so there is nothing to compare with: %w", c.Name, c.Type, err)
			}
			return nil, fmt.Errorf("reading %s %s = %q from %s: %w", s.Object, s.ExternalID, rec.key, c.Name, err)
		}
		p.Found = &found
		if found {
			if id, ok := current["Id"].(string); ok {
				p.TargetID = id
			}
		}
	}
	var createOnly map[string]bool
	if found && c.Type == salesforceType && conn.Capabilities().DescribeObject {
		if obj, err := conn.DescribeObject(ctx, s.Object); err == nil {
			createOnly = map[string]bool{}
			for _, f := range obj.Fields {
				if f.Createable && !f.Updateable {
					createOnly[f.Name] = true
				}
			}
		}
	}

	switch {
	case rec.del:
		p.Action = "delete"
		if p.Found != nil && !found {
			p.Action, p.Why = "nothing", "the record would be deleted, but the target has no record with that key"
		}
	case p.Error != "":
		p.Action, p.Why = "nothing", errWhy
	case s.Mode == connectors.Insert:
		p.Action = "create"
	case s.Mode == connectors.Update && !found:
		p.Action, p.Why = "nothing", "mode is update and the target has no record with that key: the sync would dead-letter it"
	case found:
		p.Action = "update"
	default:
		p.Action = "create"
	}

	if skipWhy != "" {
		p.Action, p.Why = "nothing", skipWhy
	}
	for _, name := range m.Fields() {
		f := previewField{Field: name}
		f.Mapped, f.HasMapped = mapped[name]
		if found {
			f.Current, f.HasCur = current[name]
		}
		switch {
		case rec.del || p.Error != "":
			if !f.HasCur {
				continue
			}
		case !f.HasMapped:
			f.Note = "left out"
			if p.Action == "update" {
				f.Note = "left out: the target keeps its value"
			}
			f.Changed = ptr(false)
		case p.Action == "update" && createOnly[name]:
			f.Note = "create-only: left out of updates"
			f.Changed = ptr(false)
		case p.Action == "create":
			f.Changed = ptr(true)
		case !f.HasCur:
			f.Note = "not read back (a relationship or a field the target does not return)"
		default:
			f.Changed = ptr(!sameValue(f.Current, f.Mapped))
		}
		p.Fields = append(p.Fields, f)
	}
	return p, nil
}

const salesforceType = "salesforce"

func ptr[T any](v T) *T { return &v }

// sameValue compares a target's value with a mapped one as the target would
// store it: numbers by value (120 = 120.0, and "120" for a number), times
// by instant (2024-05-01T10:00:00.000+0000 = 2024-05-01T10:00:00Z), the
// rest as JSON. Two texts are compared as texts ("007" is not "7").
func sameValue(cur, mapped any) bool {
	_, curText := cur.(string)
	_, mappedText := mapped.(string)
	if cf, ok := asNumber(cur); ok && !(curText && mappedText) {
		if mf, ok := asNumber(mapped); ok {
			return cf == mf
		}
	}
	if cs, ok := cur.(string); ok {
		if ms, ok := mapped.(string); ok {
			if cs == ms {
				return true
			}
			if ct, ok := asTime(cs); ok {
				if mt, ok := asTime(ms); ok {
					return ct.Equal(mt)
				}
			}
			return false
		}
	}
	a, _ := json.Marshal(cur)
	b, _ := json.Marshal(mapped)
	return bytes.Equal(a, b)
}

func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f, true
		}
	}
	return 0, false
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.000Z0700"}

func asTime(s string) (time.Time, bool) {
	if len(s) < 19 {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// printTable prints the preview for people.
func (p *preview) printTable(w io.Writer) {
	fmt.Fprintf(w, "sync %s: %s %s, %s", p.Sync, p.Connector, p.Object, p.Mode)
	if p.ExternalID != "" {
		fmt.Fprintf(w, " by %s", p.ExternalID)
	}
	fmt.Fprintf(w, ", key %q\n", p.Key)
	fmt.Fprintf(w, "event: %s", p.From)
	if p.EventID != "" {
		fmt.Fprintf(w, ", id %s", p.EventID)
	}
	if p.Version != nil {
		fmt.Fprintf(w, ", version %d", *p.Version)
	}
	fmt.Fprintln(w)
	if p.Guard != nil {
		fmt.Fprintf(w, "the sync's version guard holds version %d of this key: %s (event %s, %s)\n", p.Guard.Version, p.Guard.State, p.Guard.EventID, p.Guard.UpdatedAt.Format(time.RFC3339))
	}
	switch {
	case p.Found == nil:
	case *p.Found && p.TargetID != "":
		fmt.Fprintf(w, "the target holds the record: %s\n", p.TargetID)
	case *p.Found:
		fmt.Fprintln(w, "the target holds the record")
	default:
		fmt.Fprintln(w, "the target has no record with that key")
	}
	if p.Error != "" {
		fmt.Fprintf(w, "mapping error: %s\n", p.Error)
	}
	changed := 0
	for _, f := range p.Fields {
		if f.Changed != nil && *f.Changed {
			changed++
		}
	}
	action := "would " + p.Action + " the record"
	switch p.Action {
	case "nothing":
		action = "would write nothing"
	case "update", "create":
		action += fmt.Sprintf(": %d of %d field(s) change", changed, len(p.Fields))
	}
	fmt.Fprintf(w, "the sync %s", action)
	if p.Why != "" {
		fmt.Fprintf(w, " (%s)", p.Why)
	}
	fmt.Fprintln(w, "; nothing was written")
	if len(p.Fields) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tCURRENT\tMAPPED\tCHANGED")
	for _, f := range p.Fields {
		cur, mapped, ch := "-", "-", "?"
		if f.HasCur {
			cur = shortJSON(f.Current)
		}
		if f.HasMapped {
			mapped = shortJSON(f.Mapped)
		}
		if f.Changed != nil {
			ch = map[bool]string{true: "yes", false: "no"}[*f.Changed]
		}
		if f.Note != "" {
			ch += " (" + f.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Field, cur, mapped, ch)
	}
	_ = tw.Flush()
}

// shortJSON renders a value as compact JSON, at most 48 characters.
func shortJSON(v any) string {
	b, err := marshalNoEscape(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := []rune(string(b))
	if len(s) > 48 {
		return string(s[:47]) + "…"
	}
	return string(s)
}
