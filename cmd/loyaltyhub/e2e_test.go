package main

// End-to-end tests: the real loyaltyhub binary as a child process, the real
// bus (embedded NATS JetStream, or an external server), the real state store
// (SQLite, or PostgreSQL), the real Salesforce connector against the
// Salesforce emulator, and ledger traffic posted over HTTP.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/config"
	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

var hubBinary string

func TestMain(m *testing.M) {
	// In-process tests start the built-in connectors as children of the
	// test binary itself, as the hub does with its own binary.
	if len(os.Args) == 4 && os.Args[1] == "connector" && os.Args[2] == "serve" {
		if err := host.ServeRegistered(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "loyaltyhub-e2e-")
	if err != nil {
		panic(err)
	}
	hubBinary = filepath.Join(dir, "loyaltyhub")
	out, err := exec.Command("go", "build", "-o", hubBinary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building loyaltyhub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const (
	lpm     = "LoyaltyProgramMember"
	extID   = "Ledger_Member_Id__c"
	syncLPM = "members-to-crm"
)

// org is the Salesforce emulator plus a record of every version written to
// each LoyaltyProgramMember, in commit order.
type org struct {
	*sfemu.Server
	mu      sync.Mutex
	history map[string][]float64 // record id → Ledger_Version__c values written
}

func startOrg(t testing.TB) *org {
	t.Helper()
	o := &org{history: map[string][]float64{}}
	cfg := sfemu.DefaultConfig()
	cfg.OnWrite = func(object, id string, fields map[string]any) {
		if object != lpm {
			return
		}
		if v, ok := fields["Ledger_Version__c"].(float64); ok {
			o.mu.Lock()
			o.history[id] = append(o.history[id], v)
			o.mu.Unlock()
		}
	}
	srv, err := sfemu.New(cfg)
	require.NoError(t, err)
	_, err = srv.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	o.Server = srv
	return o
}

// neverOlder fails if any record was written with an older version after a
// newer one; it returns how many versions were written.
func (o *org) neverOlder(t *testing.T) int {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	writes, rewrites := 0, 0
	for id, h := range o.history {
		writes += len(h)
		for i := 1; i < len(h); i++ {
			if h[i] == h[i-1] {
				rewrites++
			}
			if h[i] < h[i-1] {
				t.Errorf("record %s: version %v written after version %v (history %v)", id, h[i], h[i-1], h)
				break
			}
		}
	}
	t.Logf("%d versions written to %d records (%d of them the same version again: redeliveries and retries)", writes, len(o.history), rewrites)
	return writes
}

// hubSetup says how a hub config is written.
type hubSetup struct {
	busURL, stream, prefix string // external bus (busURL != "")
	storeDriver, storeDSN  string // default sqlite in the data dir
	leaseTTL               time.Duration
	// batch is the sync's batch block; default {size: 200, window: 50ms}.
	batch string
	// bulkThreshold is the connector's bulk_threshold; 0: the default.
	bulkThreshold int
}

type hub struct {
	t       testing.TB
	dir     string
	cfgPath string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	logs    *os.File
	starts  int
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// e2eKey signs the end-to-end tests' deliveries: newHub's ledger source
// requires it, and every test sender uses it.
const e2eKey = "whsec_ZTJlLXRlc3Qta2V5LWZvci10aGUtbGVkZ2VyLXNvdXJjZQ=="

// signedPost posts body to a newHub's ingress, signed with e2eKey.
func signedPost(url, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256(body)
	if err := ledgeremu.Sign(req.Header, e2eKey, "msg_"+hex.EncodeToString(sum[:8]), time.Now(), body); err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// newHub writes a config for o into a temp dir.
func newHub(t testing.TB, o *org, s hubSetup) *hub {
	t.Helper()
	dir := t.TempDir()
	mapping, err := filepath.Abs("../../config/mappings/member-to-lpm.yaml")
	require.NoError(t, err)
	h := &hub{t: t, dir: dir, cfgPath: filepath.Join(dir, "hub.yaml"), addr: freeAddr(t)}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nhttp: {listen: %q}\nprogress: {interval: 1s}\n", filepath.Join(dir, "data"), h.addr)
	fmt.Fprintf(&b, "bus:\n  ack_wait: 3s\n")
	if s.busURL != "" {
		fmt.Fprintf(&b, "  url: %q\n  stream: %s\n  subject_prefix: %s\n", s.busURL, s.stream, s.prefix)
	}
	if s.storeDriver != "" {
		fmt.Fprintf(&b, "store: {driver: %s, dsn: %q}\n", s.storeDriver, s.storeDSN)
	}
	if s.leaseTTL > 0 {
		fmt.Fprintf(&b, "replica: {lease_ttl: %s}\n", s.leaseTTL)
	}
	fmt.Fprintf(&b, `sources:
  ledger: {secrets: [%q]}       # the senders sign with it (Standard Webhooks)
connectors:
  crm:
    type: salesforce
    config:
      login_url: %q
      client_id: %s
      client_secret: %s
      bulk_threshold: %d
syncs:
  %s:
    from: ledger.member
    to: crm
    object: %s
    external_id: %s
    mapping: %q
    batch: %s
    retry: {max_attempts: 20, initial_interval: 50ms, max_interval: 1s}
`, e2eKey, o.URL(), sfemu.DefaultClientID, sfemu.DefaultClientSecret, cmp.Or(s.bulkThreshold, 2000), syncLPM, lpm, extID, mapping,
		cmp.Or(s.batch, "{size: 200, window: 50ms}"))
	h.writeConfig(b.String())
	return h
}

// newBareHub is a hub whose config the caller writes with writeConfig.
func newBareHub(t testing.TB) *hub {
	dir := t.TempDir()
	return &hub{t: t, dir: dir, cfgPath: filepath.Join(dir, "hub.yaml"), addr: freeAddr(t)}
}

// writeConfig writes the hub's config file and opens its log, shown when the
// test fails.
func (h *hub) writeConfig(cfg string) {
	t := h.t
	t.Helper()
	require.NoError(t, os.WriteFile(h.cfgPath, []byte(cfg), 0o600))
	logs, err := os.Create(filepath.Join(h.dir, "hub.log"))
	require.NoError(t, err)
	h.logs = logs
	t.Cleanup(func() {
		h.stop(syscall.SIGKILL)
		_ = logs.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logs.Name())
			if len(data) > 8000 {
				data = data[len(data)-8000:]
			}
			t.Logf("hub log (tail):\n%s", data)
		}
	})
}

// start runs the hub process and waits until it is ready.
func (h *hub) start() {
	h.t.Helper()
	h.starts++
	fmt.Fprintf(h.logs, "==== start %d\n", h.starts)
	h.cmd = exec.Command(hubBinary, "run", "-c", h.cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	require.NoError(h.t, h.cmd.Start())
	exited, cmd := make(chan struct{}), h.cmd
	h.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + h.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited: // a config error, say: the log says why
			h.t.Fatalf("hub exited at start (%s)", cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
	h.t.Fatalf("hub did not become ready within 30s")
}

// stop signals the hub and waits for it to exit.
func (h *hub) stop(sig syscall.Signal) {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(sig)
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
		h.t.Errorf("hub did not stop within 60s after %v", sig)
	}
	h.cmd = nil
}

func (h *hub) url() string { return "http://" + h.addr + "/v1/events/ledger" }

var tierPicklist = map[string]string{"bronze": "Bronze", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"}
var statusPicklist = map[string]string{"active": "Active", "suspended": "Inactive", "closed": "Inactive"}

// converged reports whether the org holds exactly the plan's newest state,
// one record per member; it returns a description of the first difference.
func converged(o *org, plan *ledgeremu.Plan) (bool, string) {
	recs := o.Records(lpm)
	byKey := make(map[string]map[string]any, len(recs))
	for _, r := range recs {
		key, _ := r[extID].(string)
		if _, dup := byKey[key]; dup {
			return false, "two records for member " + key
		}
		byKey[key] = r
	}
	if len(byKey) != len(plan.Newest) {
		return false, fmt.Sprintf("%d members in the org, want %d", len(byKey), len(plan.Newest))
	}
	for id, m := range plan.Newest {
		r := byKey[id]
		if r == nil {
			return false, "member " + id + " missing"
		}
		if r["Ledger_Version__c"] != float64(m.Version) {
			return false, fmt.Sprintf("member %s at version %v, want %d", id, r["Ledger_Version__c"], m.Version)
		}
		if r["Points_Balance__c"] != float64(m.PointsBalance) || r["Tier__c"] != tierPicklist[m.Tier] ||
			r["MemberStatus"] != statusPicklist[m.Status] || r["Email__c"] != m.Email || r["MembershipNumber"] != m.ID {
			return false, fmt.Sprintf("member %s holds %v, want the fields of version %d: %+v", id, r, m.Version, m)
		}
	}
	return true, ""
}

// waitDrained waits until the hub has an outcome for every distinct event of
// the plan and nothing left on the bus: after a crash, events that were in
// flight come back after bus.ack_wait, when the org may already hold the
// newest versions.
func (h *hub) waitDrained(plan *ledgeremu.Plan, within time.Duration) {
	h.t.Helper()
	var last string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + h.addr + "/v1/syncs")
		if err == nil {
			var out struct {
				Syncs []struct {
					Name                   string
					Applied, Skipped, Dead int64
					Backlog                *int
				} `json:"syncs"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			for _, s := range out.Syncs {
				if s.Name != syncLPM {
					continue
				}
				last = fmt.Sprintf("%+v backlog %v", s, s.Backlog)
				if s.Backlog != nil && *s.Backlog == 0 && s.Applied+s.Skipped+s.Dead >= int64(plan.Distinct) {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("the hub did not drain within %v: %s", within, last)
}

func waitConverged(t *testing.T, o *org, plan *ledgeremu.Plan, within time.Duration) {
	t.Helper()
	var why string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = converged(o, plan); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the org did not converge within %v: %s", within, why)
}

// checkOutcomes opens the hub's state store (the hub must be stopped for
// SQLite) and checks that every distinct event has exactly one outcome and
// none was dead-lettered.
func checkOutcomes(t *testing.T, driver, dsn string, plan *ledgeremu.Plan) store.Counts {
	t.Helper()
	st, err := store.Open(context.Background(), driver, dsn, nil)
	require.NoError(t, err)
	defer st.Close()
	c, err := st.Counts(context.Background(), syncLPM)
	require.NoError(t, err)
	t.Logf("outcomes: %d applied, %d skipped, %d dead (distinct events %d, duplicates sent %d, out of order %d)",
		c.Applied, c.Skipped, c.Dead, plan.Distinct, plan.Duplicates, plan.Reordered)
	require.Zero(t, c.Dead, "no event may be dead-lettered")
	require.Equal(t, int64(plan.Distinct), c.Applied+c.Skipped, "every distinct event has exactly one outcome")
	require.GreaterOrEqual(t, c.Applied, int64(len(plan.Newest)), "at least the newest version of each member was applied")
	return c
}

// sendAsync posts evs to h in batches of 100 in the background, retrying
// for up to 3 minutes while the hub is down; the channel gets the result.
func sendAsync(h *hub, evs []ledgeremu.CloudEvent) <-chan error {
	sent := make(chan error, 1)
	go func() {
		sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 100, RetryFor: 3 * time.Minute}
		sent <- sender.Send(context.Background(), evs, nil)
	}()
	return sent
}

func e2ePlan() *ledgeremu.Plan {
	return ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 1000, Events: 10000, DuplicateRate: 0.1, ReorderRate: 0.1, Seed: 42})
}

func TestEndToEnd10000Events(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	h.start()
	plan := e2ePlan()
	sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 100}
	require.NoError(t, sender.Send(context.Background(), plan.Deliveries, nil))
	waitConverged(t, o, plan, 2*time.Minute)
	h.waitDrained(plan, time.Minute)
	h.stop(syscall.SIGTERM)
	writes := o.neverOlder(t)
	c := checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
	// Without a crash, every write is one applied event: nothing written twice.
	require.Equal(t, int64(writes), c.Applied, "versions written to the org = events applied")
}

// TestEndToEndBacklogThroughBulkAPI: a sync with large batches drains a
// backlog through Bulk API 2.0 jobs, with the same outcome as through
// sObject Collections: the newest version of every member, each event
// counted once.
func TestEndToEndBacklogThroughBulkAPI(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{batch: "{size: 5000, window: 2s}", bulkThreshold: 300})
	h.start()
	plan := e2ePlan()
	sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 500}
	require.NoError(t, sender.Send(context.Background(), plan.Deliveries, nil))
	waitConverged(t, o, plan, 2*time.Minute)
	h.waitDrained(plan, time.Minute)
	h.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
	jobs := o.BulkJobs()
	require.NotEmpty(t, jobs, "the backlog went through Bulk API 2.0")
	for _, j := range jobs {
		assert.Equal(t, "JobComplete", j.State)
	}
	t.Logf("%d bulk jobs; collection upserts: %d", len(jobs), o.Stats().Calls["collections.upsert"])
}

// TestEndToEndBackfillAfterTheOrgIsReset: the org loses every member (a
// sandbox refresh); `loyaltyhub backfill` writes the newest version of each
// again from the bus, through Bulk API 2.0, though the hub has them all as
// applied.
func TestEndToEndBackfillAfterTheOrgIsReset(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{batch: "{size: 5000, window: 500ms}", bulkThreshold: 300})
	h.start()
	plan := e2ePlan()
	sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 500}
	require.NoError(t, sender.Send(context.Background(), plan.Deliveries, nil))
	waitConverged(t, o, plan, 2*time.Minute)
	h.waitDrained(plan, time.Minute)

	require.NoError(t, o.Reset())
	require.Empty(t, o.Records(lpm))
	out, err := runCLI(t, "backfill", syncLPM, "--hub", "http://"+h.addr, "--poll", "100ms")
	require.NoError(t, err, out)
	// The bus holds every delivery (the redeliveries too, past JetStream's
	// duplicate window): at least the 10,000 distinct events.
	assert.Regexp(t, `done in .*: 1[0-9]{4} events on the bus, 1000 selected \(the newest per key\), 1000 written, 0 skipped`, out)
	ok, diff := converged(o, plan)
	require.True(t, ok, diff)
	assert.NotEmpty(t, o.BulkJobs(), "the backfill went through Bulk API 2.0")

	// A second backfill finds the records there: Salesforce refuses their
	// create-only ProgramId, which the connector leaves out on a second try.
	out, err = runCLI(t, "backfill", syncLPM, "--hub", "http://"+h.addr, "--poll", "100ms")
	require.NoError(t, err, out)
	assert.Contains(t, out, "1000 written, 0 skipped")
	ok, diff = converged(o, plan)
	require.True(t, ok, diff)
	h.stop(syscall.SIGTERM)
	checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
}

func TestEndToEndSurvivesSIGKILL(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	h.start()
	plan := e2ePlan()

	sent := sendAsync(h, plan.Deliveries)
	// Kill the hub at a random moment while events are arriving and being
	// written, then restart it on the same data directory.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	delay := time.Duration(300+rng.IntN(2500)) * time.Millisecond
	time.Sleep(delay)
	held := len(o.Records(lpm))
	h.stop(syscall.SIGKILL)
	t.Logf("SIGKILL after %v (org held %d members)", delay, held)
	h.start()

	require.NoError(t, <-sent)
	waitConverged(t, o, plan, 3*time.Minute)
	h.waitDrained(plan, time.Minute)
	h.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
}

// TestEndToEndExternalNATSAndPostgres runs the same flow on the scale-out
// path: an external NATS JetStream server and a PostgreSQL state store.
func TestEndToEndExternalNATSAndPostgres(t *testing.T) {
	setup := externalSetup(t)
	o := startOrg(t)
	h := newHub(t, o, setup)
	h.start()
	plan := e2ePlan()
	sent := sendAsync(h, plan.Deliveries)
	time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
	h.stop(syscall.SIGKILL)
	h.start()
	require.NoError(t, <-sent)
	waitConverged(t, o, plan, 3*time.Minute)
	h.waitDrained(plan, time.Minute)
	h.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, "postgres", setup.storeDSN, plan)
}

// externalSetup gives a test its own stream, subject prefix and schema on
// the external NATS and PostgreSQL, removed afterwards; it skips the test
// when they are not given.
func externalSetup(t *testing.T) hubSetup {
	natsURL, pgDSN := os.Getenv("LOYALTYHUB_TEST_NATS_URL"), os.Getenv("LOYALTYHUB_TEST_POSTGRES_DSN")
	if natsURL == "" || pgDSN == "" {
		t.Skip("set LOYALTYHUB_TEST_NATS_URL and LOYALTYHUB_TEST_POSTGRES_DSN to run against an external NATS JetStream and PostgreSQL (.ci/run does)")
	}
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	stream, prefix, schema := "LHE2E_"+suffix, "lhe2e"+suffix, "lhe2e_"+suffix
	t.Cleanup(func() {
		if nc, err := nats.Connect(natsURL); err == nil {
			if js, err := jetstream.New(nc); err == nil {
				_ = js.DeleteStream(context.Background(), stream)
			}
			nc.Close()
		}
		if conn, err := pgx.Connect(context.Background(), pgDSN); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			_ = conn.Close(context.Background())
		}
	})
	return hubSetup{busURL: natsURL, stream: stream, prefix: prefix, storeDriver: "postgres", storeDSN: withSearchPath(t, pgDSN, schema)}
}

// TestEndToEndTwoReplicas: two hub processes share the external bus and
// store, and both take events in. The sync runs on the replica holding its
// lease; SIGKILL that one mid-run and the other takes the sync over once
// the lease expires. The org converges, no record is ever written with an
// older version after a newer one, and every event has one outcome.
func TestEndToEndTwoReplicas(t *testing.T) {
	setup := externalSetup(t)
	setup.leaseTTL = 2 * time.Second
	o := startOrg(t)
	h1 := newHub(t, o, setup)
	h1.start()
	h2 := newHub(t, o, setup)
	h2.start()

	plan := e2ePlan()
	var toH1, toH2 []ledgeremu.CloudEvent
	for i, d := range plan.Deliveries {
		if i%2 == 0 {
			toH1 = append(toH1, d)
		} else {
			toH2 = append(toH2, d)
		}
	}
	sent1, sent2 := sendAsync(h1, toH1), sendAsync(h2, toH2)
	time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
	h1.stop(syscall.SIGKILL) // the first replica started holds the lease
	time.Sleep(3 * time.Second)
	h1.start() // its sender's retries get through again; it stands by
	require.NoError(t, <-sent1)
	require.NoError(t, <-sent2)
	waitConverged(t, o, plan, 3*time.Minute)
	h2.waitDrained(plan, time.Minute)
	out, err := runCLI(t, "syncs", "--hub", "http://"+h1.addr)
	require.NoError(t, err, out)
	assert.Regexp(t, syncLPM+` .* `+regexp.QuoteMeta(replicaID(&config.Config{DataDir: filepath.Join(h2.dir, "data")}))+`\n`, out,
		"any replica's admin API shows that replica 2 runs the sync")
	h1.stop(syscall.SIGTERM)
	h2.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, "postgres", setup.storeDSN, plan)

	logs := func(h *hub) string {
		data, err := os.ReadFile(h.logs.Name())
		require.NoError(t, err)
		return string(data)
	}
	l1, l2 := logs(h1), logs(h2)
	first, _, _ := strings.Cut(l1, "==== start 2")
	assert.Contains(t, first, "lease acquired", "replica 1 ran the sync first")
	assert.Contains(t, l2, "standing by", "replica 2 stood by")
	assert.Contains(t, l2, "lease acquired", "replica 2 took the sync over")
}

func withSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// TestSoakRepeatedHubKills is the long version of the crash test: 30,000
// events, the hub killed with SIGKILL five times while they flow. It runs
// with `make soak` (LOYALTYHUB_SOAK=1), not in `make test`.
func TestSoakRepeatedHubKills(t *testing.T) {
	if os.Getenv("LOYALTYHUB_SOAK") == "" {
		t.Skip("soak test: run with `make soak` (LOYALTYHUB_SOAK=1)")
	}
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	h.start()
	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 3000, Events: 30000, DuplicateRate: 0.1, ReorderRate: 0.1, Seed: 99})
	sent := make(chan error, 1)
	go func() {
		sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 100, RetryFor: 5 * time.Minute}
		sent <- sender.Send(context.Background(), plan.Deliveries, func(int) { time.Sleep(20 * time.Millisecond) })
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for i := 0; i < 5; i++ {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		h.stop(syscall.SIGKILL)
		h.start()
	}
	require.NoError(t, <-sent)
	waitConverged(t, o, plan, 5*time.Minute)
	h.waitDrained(plan, 2*time.Minute)
	h.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
}
