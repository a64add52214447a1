// Package conformance is the plugin conformance kit: it starts any
// connector plugin binary the way the hub does and runs a suite of checks
// against it (handshake, describe, bad config, per-record write semantics,
// idempotent re-writes, paging and cursors, cancellation, a full-size batch,
// behaviour after a crash and restart), reporting pass, fail or skip with
// reasons. `loyaltyhub plugin test PATH` prints the report and exits non-zero
// when any check fails.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

// Options tune a run.
type Options struct {
	// SHA256 pins the binary; default: the digest of the file as it is now
	// (the kit tests the binary it is given).
	SHA256 string
	// Args and Env are passed to the plugin process.
	Args []string
	Env  []string
	// Fixture drives the checks that need data; without one those checks
	// are skipped (and the report says so).
	Fixture *Fixture
	// CallTimeout bounds each call. Default 10s.
	CallTimeout time.Duration
	// CancelGrace is how long a plugin may take to answer again after a
	// cancelled call. Default 2s.
	CancelGrace time.Duration
	// Logger receives the host's and the plugin's logs; default: discarded.
	Logger *slog.Logger
}

// Outcome of one check.
type Outcome string

// Outcomes.
const (
	Pass Outcome = "PASS"
	Fail Outcome = "FAIL"
	Skip Outcome = "SKIP"
)

// Check is the outcome of one check, with the reason.
type Check struct {
	Name     string        `json:"name"`
	Outcome  Outcome       `json:"outcome"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Report is the result of a run.
type Report struct {
	Path   string  `json:"path"`
	Plugin string  `json:"plugin,omitempty"`
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Outcome == Fail })
}

// Count returns how many checks had outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, c := range r.Checks {
		if c.Outcome == o {
			n++
		}
	}
	return n
}

// Find returns the check named name.
func (r Report) Find(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// WriteText prints the report, one line per check and the reasons indented.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "conformance of %s", r.Path)
	if r.Plugin != "" {
		fmt.Fprintf(w, " (%s)", r.Plugin)
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %s  %-26s %6dms\n", c.Outcome, c.Name, c.Duration.Milliseconds())
		if c.Reason != "" {
			for _, line := range strings.Split(c.Reason, "\n") {
				fmt.Fprintf(w, "        %s\n", line)
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", r.Count(Pass), r.Count(Fail), r.Count(Skip))
}

// Check names, in the order they run.
const (
	CheckHandshake      = "handshake"
	CheckDescribe       = "describe"
	CheckBadConfig      = "bad config"
	CheckConfigure      = "configure and check"
	CheckWrite          = "write semantics"
	CheckIdempotent     = "idempotent re-write"
	CheckUnknownObject  = "unknown object"
	CheckLargeBatch     = "large batch"
	CheckRead           = "read paging and cursors"
	CheckDescribeObject = "describe object"
	CheckCancel         = "cancellation"
	CheckCrash          = "crash and restart"
)

// run carries the state of one run.
type run struct {
	opts   Options
	p      *host.Plugin
	desc   connectors.Description
	caps   host.Capabilities
	report *Report
	ok     map[string]bool
	// applied target ids of the first pass of each write step
	ids [][]string
}

// failf is the error a check returns to fail with a reason.
func failf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// errSkip skips a check with a reason.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

func skip(reason string) error { return errSkip{reason} }

func (r *run) check(name string, needs []string, fn func() error) {
	for _, n := range needs {
		if !r.ok[n] {
			r.report.Checks = append(r.report.Checks, Check{Name: name, Outcome: Skip, Reason: fmt.Sprintf("needs %q to pass", n)})
			return
		}
	}
	t0 := time.Now()
	err := fn()
	c := Check{Name: name, Outcome: Pass, Duration: time.Since(t0)}
	var s errSkip
	switch {
	case errors.As(err, &s):
		c.Outcome, c.Reason = Skip, s.reason
	case err != nil:
		c.Outcome, c.Reason = Fail, err.Error()
	}
	r.ok[name] = c.Outcome == Pass
	r.report.Checks = append(r.report.Checks, c)
}

func (r *run) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.opts.CallTimeout+5*time.Second)
}

// Run runs the suite against the plugin binary at path.
func Run(ctx context.Context, path string, opts Options) Report {
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 10 * time.Second
	}
	if opts.CancelGrace == 0 {
		opts.CancelGrace = 2 * time.Second
	}
	rep := &Report{Path: path}
	r := &run{opts: opts, report: rep, ok: map[string]bool{}}
	defer func() {
		if r.p != nil {
			r.p.Close()
		}
	}()
	f := opts.Fixture
	needFixture := func() error {
		if f == nil {
			return skip("no fixture given")
		}
		return nil
	}

	r.check(CheckHandshake, nil, func() error { return r.handshake(ctx, path) })
	r.check(CheckDescribe, []string{CheckHandshake}, r.describe)
	r.check(CheckBadConfig, []string{CheckHandshake}, r.badConfig)
	r.check(CheckConfigure, []string{CheckHandshake}, func() error {
		if err := needFixture(); err != nil {
			return err
		}
		return r.configure()
	})
	r.check(CheckWrite, []string{CheckConfigure}, r.writes)
	r.check(CheckIdempotent, []string{CheckConfigure}, r.rewrites)
	r.check(CheckUnknownObject, []string{CheckConfigure}, r.unknownObject)
	r.check(CheckLargeBatch, []string{CheckConfigure}, r.largeBatch)
	r.check(CheckRead, []string{CheckConfigure}, r.read)
	r.check(CheckDescribeObject, []string{CheckConfigure}, r.describeObject)
	r.check(CheckCancel, []string{CheckConfigure}, r.cancellation)
	r.check(CheckCrash, []string{CheckConfigure}, r.crash)
	return *rep
}

func (r *run) handshake(ctx context.Context, path string) error {
	sum := r.opts.SHA256
	if sum == "" {
		var err error
		if sum, err = host.FileSHA256(path); err != nil {
			return failf("cannot read the binary: %v", err)
		}
	}
	p, err := host.Start(ctx, host.Config{
		Name: "under-test", Path: path, Args: r.opts.Args, Env: r.opts.Env, SHA256: sum,
		CallTimeout: r.opts.CallTimeout, HealthInterval: -1, RestartBackoff: 100 * time.Millisecond, MaxRestartBackoff: time.Second,
	}, r.opts.Logger)
	if err != nil {
		return failf("the hub cannot start the plugin: %v", err)
	}
	r.p = p
	return nil
}

func (r *run) describe() error {
	ctx, cancel := r.ctx()
	defer cancel()
	d, err := r.p.Describe(ctx)
	if err != nil {
		return failf("Describe failed: %v", err)
	}
	r.desc, r.caps = d, r.p.Capabilities()
	r.report.Plugin = d.Name + " " + d.Version
	var errs []string
	if d.Name == "" {
		errs = append(errs, "name is empty")
	}
	if d.Version == "" {
		errs = append(errs, "version is empty")
	}
	if d.MaxBatch <= 0 {
		errs = append(errs, fmt.Sprintf("max_batch is %d: it must be at least 1 (the hub never sends more than max_batch records)", d.MaxBatch))
	}
	if len(d.Objects) == 0 {
		errs = append(errs, "objects is empty: list the objects the connector writes or reads")
	}
	if len(d.ConfigSchema) > 0 {
		var schema map[string]any
		if err := json.Unmarshal(d.ConfigSchema, &schema); err != nil {
			errs = append(errs, fmt.Sprintf("config_schema is not a JSON object: %v", err))
		}
	} else {
		errs = append(errs, "config_schema is empty: the hub checks the config block against it")
	}
	if !r.caps.Write && !r.caps.Read {
		errs = append(errs, "the plugin neither writes nor reads")
	}
	for _, o := range append(append([]string(nil), d.Writes...), d.Reads...) {
		if !slices.Contains(d.Objects, o) {
			errs = append(errs, fmt.Sprintf("writes/reads name %q, which objects does not list", o))
		}
	}
	if f := r.opts.Fixture; f != nil {
		for _, w := range f.Writes {
			if !slices.Contains(d.Objects, w.Object) {
				errs = append(errs, fmt.Sprintf("fixture writes %q, which objects does not list", w.Object))
			}
			if len(d.Writes) > 0 && !slices.Contains(d.Writes, w.Object) {
				errs = append(errs, fmt.Sprintf("fixture writes %q, which writes does not list", w.Object))
			}
		}
	}
	if len(errs) > 0 {
		return failf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func (r *run) badConfig() error {
	bad := []BadConfig{{Config: json.RawMessage(`"not an object"`)}, {Config: json.RawMessage(`{"loyaltyhub_conformance_unknown_field": true}`)}}
	if f := r.opts.Fixture; f != nil {
		bad = append(bad, f.BadConfigs...)
	}
	var errs []string
	for _, b := range bad {
		ctx, cancel := r.ctx()
		err := r.p.Configure(ctx, b.Config)
		cancel()
		switch {
		case err == nil:
			errs = append(errs, fmt.Sprintf("accepted the bad config %s: want a permanent error naming the field at fault", b.Config))
		case connectors.KindOf(err) != connectors.Permanent:
			errs = append(errs, fmt.Sprintf("refused %s with a %s error, want permanent (a bad config does not heal by retrying): %v", b.Config, connectors.KindOf(err), err))
		case b.ErrorContains != "" && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(b.ErrorContains)):
			errs = append(errs, fmt.Sprintf("refused %s but the error does not name %q: %v", b.Config, b.ErrorContains, err))
		}
	}
	if len(errs) > 0 {
		return failf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func (r *run) configure() error {
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.p.Configure(ctx, r.opts.Fixture.Config); err != nil {
		return failf("the fixture's config was refused: %v", err)
	}
	if err := r.p.Check(ctx); err != nil {
		return failf("Check failed after Configure: %v", err)
	}
	return nil
}

func (s WriteStep) request() connectors.WriteRequest {
	return connectors.WriteRequest{Object: s.Object, Operation: s.Operation, ExternalIDField: s.ExternalIDField, Records: s.Records}
}

// verify checks one write answer against the expectations.
func verify(step WriteStep, resp connectors.WriteResponse) ([]string, []string) {
	var errs []string
	ids := make([]string, len(step.Records))
	if len(resp.Results) != len(step.Records) {
		return nil, []string{fmt.Sprintf("%s: %d results for %d records", step.Name, len(resp.Results), len(step.Records))}
	}
	for i, res := range resp.Results {
		want := statusNames[step.Expect[i]]
		key := step.Records[i].Key
		switch {
		case res.Status != want:
			errs = append(errs, fmt.Sprintf("%s: record %d (key %q) is %s, want %s (code %q, message %q)", step.Name, i, key, res.Status, want, res.Code, res.Message))
		case want == connectors.StatusApplied && res.TargetID == "" && step.Operation != connectors.Delete:
			errs = append(errs, fmt.Sprintf("%s: record %d (key %q) is applied without a target id: the hub keeps it in the cross-reference", step.Name, i, key))
		case want != connectors.StatusApplied && res.Message == "":
			errs = append(errs, fmt.Sprintf("%s: record %d (key %q) is %s without a message: say what is wrong", step.Name, i, key, res.Status))
		}
		ids[i] = res.TargetID
	}
	if resp.Calls < 0 {
		errs = append(errs, fmt.Sprintf("%s: calls is %d", step.Name, resp.Calls))
	}
	return ids, errs
}

func (r *run) writes() error {
	f := r.opts.Fixture
	if len(f.Writes) == 0 {
		return skip("the fixture has no writes")
	}
	if !r.caps.Write {
		return failf("the fixture writes, but the plugin does not implement Write")
	}
	var errs []string
	for _, step := range f.Writes {
		ctx, cancel := r.ctx()
		resp, err := r.p.Write(ctx, step.request())
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: the whole batch failed (%s): %v", step.Name, connectors.KindOf(err), err))
			r.ids = append(r.ids, nil)
			continue
		}
		ids, e := verify(step, resp)
		errs = append(errs, e...)
		r.ids = append(r.ids, ids)
	}
	if len(errs) > 0 {
		return failf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// rewriteAll writes every step again and compares with the first pass.
func (r *run) rewriteAll(when string) []string {
	var errs []string
	for i, step := range r.opts.Fixture.Writes {
		ctx, cancel := r.ctx()
		resp, err := r.p.Write(ctx, step.request())
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: the whole batch failed (%s): %v", step.Name, when, connectors.KindOf(err), err))
			continue
		}
		ids, e := verify(step, resp)
		if r.ok[CheckWrite] { // else already reported by the write check
			for _, msg := range e {
				errs = append(errs, when+": "+msg)
			}
		}
		for j := range ids {
			if r.ids[i] == nil || r.ids[i][j] == "" || ids[j] == "" {
				continue // the first pass failed as a whole, or gave no id
			}
			if step.Expect[j] == "applied" && step.Operation != connectors.Insert && ids[j] != r.ids[i][j] {
				errs = append(errs, fmt.Sprintf("%s %s: record %d (key %q) now has target id %q, first write gave %q: re-writing must hit the same target record",
					step.Name, when, j, step.Records[j].Key, ids[j], r.ids[i][j]))
			}
		}
	}
	return errs
}

func (r *run) rewrites() error {
	if len(r.ids) == 0 {
		return skip("no write step ran")
	}
	if errs := r.rewriteAll("re-written"); len(errs) > 0 {
		return failf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func (r *run) unknownObject() error {
	ctx, cancel := r.ctx()
	defer cancel()
	const obj = "loyaltyhub_conformance_no_such_object"
	if r.caps.Write {
		resp, err := r.p.Write(ctx, connectors.WriteRequest{Object: obj, Operation: connectors.Upsert, Records: []connectors.Record{{Key: "x", Fields: map[string]any{"a": "b"}}}})
		switch {
		case err == nil && len(resp.Results) == 1 && resp.Results[0].Status == connectors.StatusPermanent:
		case err == nil:
			return failf("a write to the unknown object %q was answered %+v: want a permanent error", obj, resp.Results)
		case connectors.KindOf(err) != connectors.Permanent:
			return failf("a write to the unknown object %q failed with a %s error, want permanent: %v", obj, connectors.KindOf(err), err)
		}
	}
	if r.caps.Read {
		_, err := r.p.Read(ctx, connectors.ReadRequest{Object: obj})
		if err == nil || connectors.KindOf(err) != connectors.Permanent {
			return failf("a read of the unknown object %q gave %v, want a permanent error", obj, err)
		}
	}
	return nil
}

func (r *run) largeBatch() error {
	lb := r.opts.Fixture.LargeBatch
	if lb == nil {
		return skip("the fixture has no large_batch")
	}
	n := r.desc.MaxBatch
	req := connectors.WriteRequest{Object: lb.Object, Operation: lb.Operation, ExternalIDField: lb.ExternalIDField, Records: lb.records(n)}
	ctx, cancel := r.ctx()
	defer cancel()
	resp, err := r.p.Write(ctx, req)
	if err != nil {
		return failf("a batch of max_batch = %d records failed as a whole: %v", n, err)
	}
	if len(resp.Results) != n {
		return failf("%d results for %d records", len(resp.Results), n)
	}
	seen := map[string]int{}
	for i, res := range resp.Results {
		if res.Status != connectors.StatusApplied {
			return failf("record %d (key %q) of the large batch is %s: %s %s", i, req.Records[i].Key, res.Status, res.Code, res.Message)
		}
		if j, dup := seen[res.TargetID]; dup && res.TargetID != "" {
			return failf("records %d and %d of the large batch got the same target id %q: results must be in record order, one per record", j, i, res.TargetID)
		}
		seen[res.TargetID] = i
	}
	// One more than max_batch must be refused by the host before the wire.
	over := connectors.WriteRequest{Object: lb.Object, Operation: lb.Operation, ExternalIDField: lb.ExternalIDField, Records: lb.records(n + 1)}
	if _, err := r.p.Write(ctx, over); err == nil {
		return failf("a batch of max_batch+1 records was accepted")
	}
	return nil
}

func (r *run) read() error {
	rs := r.opts.Fixture.Read
	if rs == nil {
		return skip("the fixture has no read")
	}
	if !r.caps.Read {
		return failf("the fixture reads, but the plugin does not implement Read")
	}
	size := rs.PageSize
	if size <= 0 {
		size = 2
	}
	type page struct {
		from string
		resp connectors.ReadResponse
	}
	var pages []page
	cursor := ""
	ids := map[string]bool{}
	total := 0
	for i := 0; ; i++ {
		if i == 1000 {
			return failf("still More after 1000 pages of %d: the cursor does not move forward", size)
		}
		ctx, cancel := r.ctx()
		resp, err := r.p.Read(ctx, connectors.ReadRequest{Object: rs.Object, Cursor: cursor, Limit: size})
		cancel()
		if err != nil {
			return failf("read from cursor %q failed: %v", cursor, err)
		}
		if len(resp.Changes) > size {
			return failf("read with limit %d returned %d changes", size, len(resp.Changes))
		}
		for _, c := range resp.Changes {
			if c.ID == "" || c.Type == "" || c.Subject == "" {
				return failf("change %+v lacks an id, type or subject", c)
			}
			var obj map[string]any
			if err := json.Unmarshal(c.Data, &obj); err != nil {
				return failf("change %s: data is not a JSON object: %v", c.ID, err)
			}
			if ids[c.ID] {
				return failf("change %s came twice while paging from cursor %q: the cursor does not move past what it returned", c.ID, cursor)
			}
			ids[c.ID] = true
		}
		if len(resp.Changes) > 0 && resp.Cursor == cursor {
			return failf("a page of %d changes left the cursor at %q: the next read would return them again", len(resp.Changes), cursor)
		}
		if resp.More && len(resp.Changes) == 0 {
			return failf("an empty page said More from cursor %q", cursor)
		}
		pages = append(pages, page{from: cursor, resp: resp})
		total += len(resp.Changes)
		cursor = resp.Cursor
		if !resp.More {
			break
		}
	}
	if total < rs.MinChanges {
		return failf("read %d changes, the fixture expects at least %d after its writes", total, rs.MinChanges)
	}
	// Re-reading from a stored cursor gives the same page: the hub stores a
	// cursor only after the page is on the bus, and reads from it again after
	// a crash.
	for _, pg := range pages {
		ctx, cancel := r.ctx()
		again, err := r.p.Read(ctx, connectors.ReadRequest{Object: rs.Object, Cursor: pg.from, Limit: size})
		cancel()
		if err != nil {
			return failf("re-read from cursor %q failed: %v", pg.from, err)
		}
		if got, want := changeIDs(again.Changes), changeIDs(pg.resp.Changes); !slices.Equal(got, want) {
			return failf("re-reading from cursor %q gave %v, first read gave %v: a cursor must name a stable position", pg.from, got, want)
		}
	}
	ctx, cancel := r.ctx()
	defer cancel()
	end, err := r.p.Read(ctx, connectors.ReadRequest{Object: rs.Object, Cursor: cursor, Limit: size})
	if err != nil {
		return failf("read from the last cursor %q failed: %v", cursor, err)
	}
	if len(end.Changes) != 0 || end.More {
		return failf("reading from the last cursor %q gave %d changes (more=%v), want none: nothing was written meanwhile", cursor, len(end.Changes), end.More)
	}
	return nil
}

func changeIDs(cs []connectors.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func (r *run) describeObject() error {
	if !r.caps.DescribeObject {
		return skip("the plugin does not describe objects")
	}
	seen := map[string]bool{}
	for _, w := range r.opts.Fixture.Writes {
		if seen[w.Object] {
			continue
		}
		seen[w.Object] = true
		ctx, cancel := r.ctx()
		s, err := r.p.DescribeObject(ctx, w.Object)
		cancel()
		if err != nil {
			return failf("DescribeObject(%q) failed: %v", w.Object, err)
		}
		if len(s.Fields) == 0 {
			return failf("DescribeObject(%q) lists no fields", w.Object)
		}
		for _, f := range s.Fields {
			if f.Name == "" || f.Type == "" {
				return failf("DescribeObject(%q): field %+v lacks a name or a type", w.Object, f)
			}
		}
	}
	ctx, cancel := r.ctx()
	defer cancel()
	if _, err := r.p.DescribeObject(ctx, "loyaltyhub_conformance_no_such_object"); err == nil || connectors.KindOf(err) != connectors.Permanent {
		return failf("DescribeObject of an unknown object gave %v, want a permanent error", err)
	}
	return nil
}

// cancellation cancels calls in flight and then expects the plugin to
// answer again at once, without a restart: a plugin that keeps working on
// a cancelled call (or holds a lock meanwhile) stalls the hub's next batch.
func (r *run) cancellation() error {
	f := r.opts.Fixture
	var call func(ctx context.Context) error
	switch {
	case r.caps.Write && f.LargeBatch != nil:
		lb := f.LargeBatch
		req := connectors.WriteRequest{Object: lb.Object, Operation: lb.Operation, ExternalIDField: lb.ExternalIDField, Records: lb.records(r.desc.MaxBatch)}
		call = func(ctx context.Context) error { _, err := r.p.Write(ctx, req); return err }
	case r.caps.Write && len(f.Writes) > 0:
		call = func(ctx context.Context) error { _, err := r.p.Write(ctx, f.Writes[0].request()); return err }
	case r.caps.Read && f.Read != nil:
		call = func(ctx context.Context) error {
			_, err := r.p.Read(ctx, connectors.ReadRequest{Object: f.Read.Object, Limit: 100})
			return err
		}
	default:
		return skip("the fixture has nothing to write or read")
	}
	restarts := r.p.Restarts()
	for _, after := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		t0 := time.Now()
		err := call(ctx)
		if took := time.Since(t0); took > after+r.opts.CancelGrace {
			return failf("a call cancelled after %s returned only after %s", after, took)
		}
		if err != nil && connectors.KindOf(err) == connectors.Permanent {
			return failf("a call cancelled after %s failed with a permanent error (the batch would be dead-lettered): %v", after, err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), r.opts.CancelGrace)
		err = r.p.Check(cctx)
		ccancel()
		if err != nil {
			return failf("after a call cancelled after %s, Check did not succeed within %s (%v): the plugin keeps working on cancelled calls or holds a lock meanwhile; stop when the context is done",
				after, r.opts.CancelGrace, err)
		}
	}
	if r.p.Restarts() != restarts {
		return failf("cancelling calls made the host restart the plugin")
	}
	return nil
}

// crash kills the plugin process, then expects the host to restart it with
// its config and the plugin to give the same answers as before.
func (r *run) crash() error {
	pid := r.p.PID()
	if pid == 0 {
		return failf("no plugin process is running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return failf("killing pid %d: %v", pid, err)
	}
	restarts := r.p.Restarts()
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.p.Check(ctx); err != nil {
		return failf("after the plugin was killed, Check failed (the host restarts the plugin and replays its config): %v", err)
	}
	if r.p.Restarts() != restarts+1 {
		return failf("the host restarted the plugin %d times after one kill, want 1", r.p.Restarts()-restarts)
	}
	if len(r.ids) > 0 {
		if errs := r.rewriteAll("after a crash and restart"); len(errs) > 0 {
			return failf("%s", strings.Join(errs, "\n"))
		}
	}
	if rs := r.opts.Fixture.Read; rs != nil && r.ok[CheckRead] {
		page, err := r.p.Read(ctx, connectors.ReadRequest{Object: rs.Object, Limit: 1})
		if err != nil {
			return failf("read after the restart failed: %v", err)
		}
		if len(page.Changes) == 0 && rs.MinChanges > 0 {
			return failf("after the restart the plugin reads no changes from the start: its state was lost with the process")
		}
	}
	// In flight: kill during a call; the host retries it on the new process.
	if len(r.opts.Fixture.Writes) > 0 && len(r.ids) > 0 {
		pid = r.p.PID()
		step := r.opts.Fixture.Writes[0]
		time.AfterFunc(time.Millisecond, func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		resp, err := r.p.Write(ctx, step.request())
		if err != nil {
			return failf("a write during which the plugin was killed failed: %v (the host retries it once on the restarted plugin)", err)
		}
		if _, errs := verify(step, resp); len(errs) > 0 && r.ok[CheckWrite] {
			return failf("write during a kill: %s", strings.Join(errs, "\n"))
		}
	}
	return nil
}
