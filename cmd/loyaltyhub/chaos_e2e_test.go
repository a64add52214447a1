package main

// The chaos test: every fault the hub is built to survive, at once. Ledger
// traffic (duplicates and reorders included) flows into the real hub binary
// while it is SIGKILLed and restarted, while the Salesforce emulator fails
// a share of its calls, throttles in bursts and goes down for a while, and
// while the external NATS JetStream under the hub restarts. Afterwards the
// org must hold the newest version of every member, written in order, with
// nothing dead-lettered and no connector process left behind.
//
// `make test` runs a short form; `make chaos` (LOYALTYHUB_CHAOS=full) the
// full one.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// chaosSize is how hard TestChaos shakes the hub.
type chaosSize struct {
	name            string
	events, members int
	kills           int     // SIGKILLs of the hub, each followed by a restart
	rate503         float64 // share of the emulator's calls answered 503 throughout
	bursts          int     // bursts of 429 (Retry-After: 1)
	burstFor        time.Duration
	burstRate       float64       // share of calls answered 429 during a burst
	outage          time.Duration // every call answered 503, token calls included
	natsDown        time.Duration // how long NATS stays down when it restarts
	sendFor         time.Duration // the deliveries are spread over about this long
	settle          time.Duration // how long the hub may take to converge and drain after
}

func chaosSizeFromEnv(t *testing.T) chaosSize {
	switch v := os.Getenv("LOYALTYHUB_CHAOS"); v {
	case "full":
		return chaosSize{name: "full", events: 100_000, members: 10_000, kills: 10, rate503: 0.2,
			bursts: 6, burstFor: 5 * time.Second, burstRate: 0.8, outage: 60 * time.Second, natsDown: 3 * time.Second,
			sendFor: 5 * time.Minute, settle: 15 * time.Minute}
	case "":
		return chaosSize{name: "short", events: 3000, members: 300, kills: 2, rate503: 0.2,
			bursts: 1, burstFor: 3 * time.Second, burstRate: 0.8, outage: 5 * time.Second, natsDown: time.Second,
			sendFor: 30 * time.Second, settle: 2 * time.Minute}
	default:
		t.Fatalf("LOYALTYHUB_CHAOS=%q: want full (make chaos), or unset for the short form", v)
		return chaosSize{}
	}
}

// chaosNATS is the hub's external NATS JetStream server, run in the test
// process on a fixed port and store directory so that it can be restarted
// in place.
type chaosNATS struct {
	t        *testing.T
	host     string
	port     int
	storeDir string
	srv      *server.Server
}

func startChaosNATS(t *testing.T) *chaosNATS {
	t.Helper()
	host, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	n := &chaosNATS{t: t, host: host, storeDir: t.TempDir()}
	n.port, err = strconv.Atoi(port)
	require.NoError(t, err)
	n.start()
	t.Cleanup(n.shutdown)
	return n
}

func (n *chaosNATS) url() string { return fmt.Sprintf("nats://%s:%d", n.host, n.port) }

func (n *chaosNATS) start() {
	n.t.Helper()
	var err error
	// Right after a shutdown the port may still be held for a moment.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n.srv, err = server.NewServer(&server.Options{ServerName: "chaos-nats", Host: n.host, Port: n.port,
			JetStream: true, StoreDir: n.storeDir, NoSigs: true, NoLog: true})
		require.NoError(n.t, err)
		n.srv.Start()
		if n.srv.ReadyForConnections(5 * time.Second) {
			break
		}
		n.srv.Shutdown()
		require.True(n.t, time.Now().Before(deadline), "NATS did not start on %s", n.url())
		time.Sleep(200 * time.Millisecond)
	}
	require.True(n.t, n.srv.JetStreamEnabled(), "NATS started without JetStream")
}

func (n *chaosNATS) shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// restart stops the server, waits down, and starts it again on the same
// port and store.
func (n *chaosNATS) restart(down time.Duration) {
	n.shutdown()
	time.Sleep(down)
	n.start()
}

// scrapeMetrics reads the hub's /metrics into series → value, a series
// being written as Prometheus prints it: name{label="value",...}.
func (h *hub) scrapeMetrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + h.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

const chaosConnector = "crm" // newHub's Salesforce connector

func breakerState(m map[string]float64) float64 {
	return m[`loyaltyhub_connector_breaker_state{connector="`+chaosConnector+`"}`]
}

func breakerEntered(m map[string]float64, state string) float64 {
	return m[`loyaltyhub_connector_breaker_transitions_total{connector="`+chaosConnector+`",to="`+state+`"}`]
}

// breakerStates are the states a transition enters, as the metric labels them.
var breakerStates = []string{"open", "half-open", "closed"}

func breakerFigures(m map[string]float64) string {
	var parts []string
	for _, s := range breakerStates {
		parts = append(parts, fmt.Sprintf("%s %v", s, breakerEntered(m, s)))
	}
	return strings.Join(parts, ", ")
}

// syncCounts is what GET /v1/syncs says of the chaos test's sync.
type syncCounts struct {
	Applied, Skipped, Dead int64
	Backlog                *int
	Breaker                string
}

func (h *hub) syncCounts() (syncCounts, error) {
	resp, err := http.Get("http://" + h.addr + "/v1/syncs")
	if err != nil {
		return syncCounts{}, err
	}
	defer resp.Body.Close()
	var out struct {
		Syncs []struct {
			Name string
			syncCounts
		} `json:"syncs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return syncCounts{}, err
	}
	for _, s := range out.Syncs {
		if s.Name == syncLPM {
			return s.syncCounts, nil
		}
	}
	return syncCounts{}, fmt.Errorf("GET /v1/syncs: no sync %s", syncLPM)
}

// deadLetters lists every dead letter the running hub holds (as `loyaltyhub
// dlq list` decodes them).
func (h *hub) deadLetters() ([]deadLetter, error) {
	var all []deadLetter
	for after := int64(0); ; {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/dead-letters?limit=1000&after=%d", h.addr, after))
		if err != nil {
			return nil, err
		}
		var page struct {
			DeadLetters []deadLetter `json:"dead_letters"`
			NextAfter   int64        `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET /v1/dead-letters: %s: %w", resp.Status, err)
		}
		all = append(all, page.DeadLetters...)
		if page.NextAfter == 0 {
			return all, nil
		}
		after = page.NextAfter
	}
}

// retryableDeadLetter reports whether d was dead-lettered for a failure that
// passes (retries run out, a 5xx, a throttle, a lock, the breaker): with
// outages and throttling held, none may be.
var retryableReason = regexp.MustCompile(`(?i)\b(429|5\d\d)\b|SERVER_UNAVAILABLE|REQUEST_LIMIT_EXCEEDED|UNABLE_TO_LOCK_ROW|circuit breaker|timeout|connection refused`)

func retryableDeadLetter(d deadLetter) bool {
	switch d.Code {
	case "RETRIES_EXHAUSTED", "SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW":
		return true
	}
	return retryableReason.MatchString(d.Reason)
}

// hubConnectorProcs lists the live `connector serve` processes run from the
// hub binary, found through /proc.
func hubConnectorProcs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmdline), hubBinary+"\x00") ||
			!strings.Contains(string(cmdline), "\x00connector\x00serve\x00") || exited(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// childrenOf lists the processes among pids whose parent is ppid.
func childrenOf(pids []int, ppid int) []int {
	var out []int
	for _, pid := range pids {
		if _, parent, ok := procStat(pid); ok && parent == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// chaosStore is the state store of the chaos hub: PostgreSQL in a schema
// of its own when LOYALTYHUB_TEST_POSTGRES_DSN is set, else SQLite in the
// hub's data directory (driver and dsn empty).
func chaosStore(t *testing.T) (driver, dsn string) {
	pgDSN := os.Getenv("LOYALTYHUB_TEST_POSTGRES_DSN")
	if pgDSN == "" {
		return "", ""
	}
	schema := fmt.Sprintf("lhchaos_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), pgDSN); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			_ = conn.Close(context.Background())
		}
	})
	return "postgres", withSearchPath(t, pgDSN, schema)
}

// TestChaos posts ledger traffic (10 % duplicates, 10 % out of order) to the
// real hub binary on an external NATS JetStream while, at random moments:
// the hub is SIGKILLed and restarted; the Salesforce emulator answers a
// share of all calls with 503, throttles in bursts of 429 and goes down
// for an outage; NATS restarts. No kill happens from the outage's start
// until the breaker has closed again, so one hub process shows the breaker
// open during the outage and closed after it in /metrics. At the end: the
// org holds exactly the newest version of every member, no record was
// written with an older version after a newer one, every distinct event
// has one outcome and none is dead-lettered (certainly not for a passing
// failure), and no `connector serve` process of the hub runs any more.
//
// Without LOYALTYHUB_CHAOS it runs a short form of every fault (under a
// minute); LOYALTYHUB_CHAOS=full (make chaos) runs the full one. Set
// LOYALTYHUB_CHAOS_SEED to replay a run's plan and schedule, and
// LOYALTYHUB_CHAOS_LOG to a file to keep the hub's log there.
func TestChaos(t *testing.T) {
	needProc(t)
	size := chaosSizeFromEnv(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LOYALTYHUB_CHAOS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "LOYALTYHUB_CHAOS_SEED")
	}
	t.Logf("chaos (%s form), seed %d", size.name, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	planned := time.Now()
	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: size.members, Events: size.events,
		DuplicateRate: 0.1, ReorderRate: 0.1, Seed: seed})
	t.Logf("plan of %d deliveries made in %v", len(plan.Deliveries), time.Since(planned).Round(100*time.Millisecond))
	began := time.Now()
	// Connector processes of earlier tests in this run are theirs to report.
	before := hubConnectorProcs(t)

	nats := startChaosNATS(t)
	o := startOrg(t)
	_, err := o.AddFault(sfemu.Fault{Kind: sfemu.FaultUnavailable, Probability: size.rate503})
	require.NoError(t, err)
	driver, dsn := chaosStore(t)
	// Small batches: many calls, so many of them meet a fault.
	h := newHub(t, o, hubSetup{busURL: nats.url(), stream: "CHAOS", prefix: "chaos", storeDriver: driver, storeDSN: dsn,
		batch: "{size: 25, window: 20ms}"})
	if driver == "" {
		driver, dsn = "sqlite", filepath.Join(h.dir, "data", "state.db")
	}
	h.start()
	hubLog := func() string {
		data, err := os.ReadFile(h.logs.Name())
		require.NoError(t, err)
		return string(data)
	}
	if keep := os.Getenv("LOYALTYHUB_CHAOS_LOG"); keep != "" {
		t.Cleanup(func() { _ = os.WriteFile(keep, []byte(hubLog()), 0o600) })
	}

	var sent atomic.Int64
	var sendErr error
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		const batch = 100
		pause := size.sendFor / time.Duration((len(plan.Deliveries)+batch-1)/batch)
		sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: batch, RetryFor: 5 * time.Minute}
		sendErr = sender.Send(t.Context(), plan.Deliveries, func(n int) { sent.Store(int64(n)); time.Sleep(pause) })
	}()

	// The schedule: each fault starts once a random share of the deliveries
	// is sent (or all are), one after the other.
	type action struct {
		at   float64
		kind string
	}
	var schedule []action
	for range size.kills {
		schedule = append(schedule, action{0.05 + 0.9*rng.Float64(), "kill"})
	}
	for range size.bursts {
		schedule = append(schedule, action{0.05 + 0.9*rng.Float64(), "burst"})
	}
	schedule = append(schedule, action{0.1 + 0.5*rng.Float64(), "nats"}, action{0.3 + 0.3*rng.Float64(), "outage"})
	slices.SortFunc(schedule, func(a, b action) int { return cmp.Compare(a.at, b.at) })

	var (
		kills, natsReconnects, outage503 int
		killedChildren                   []int    // connector processes of the hubs killed
		breakerSeen                      []string // the breaker's metrics around the outage
	)
	waitSent := func(n int64) {
		for sent.Load() < n {
			select {
			case <-sendDone:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for _, a := range schedule {
		waitSent(int64(a.at * float64(len(plan.Deliveries))))
		t.Logf("%5.1fs, %d of %d deliveries sent: %s", time.Since(began).Seconds(), sent.Load(), len(plan.Deliveries), a.kind)
		switch a.kind {
		case "kill":
			killedChildren = append(killedChildren, childrenOf(hubConnectorProcs(t), h.cmd.Process.Pid)...)
			h.stop(syscall.SIGKILL)
			kills++
			h.start()
		case "burst":
			held := func() float64 {
				m, err := h.scrapeMetrics()
				require.NoError(t, err)
				return m[`loyaltyhub_sync_held_writes_total{sync="`+syncLPM+`"}`]
			}
			n429, held0 := o.Stats().Faults[string(sfemu.FaultTooManyRequests)], held()
			id, err := o.AddFault(sfemu.Fault{Kind: sfemu.FaultTooManyRequests, Probability: size.burstRate})
			require.NoError(t, err)
			time.Sleep(size.burstFor)
			o.RemoveFault(id)
			time.Sleep(1500 * time.Millisecond) // the last call throttled is sent again after its Retry-After
			t.Logf("429 burst of %v: %d calls throttled, %v write calls held (throttled, or the breaker open)",
				size.burstFor, o.Stats().Faults[string(sfemu.FaultTooManyRequests)]-n429, held()-held0)
		case "nats":
			reconnects := strings.Count(hubLog(), "reconnected to NATS")
			nats.restart(size.natsDown)
			require.Eventually(t, func() bool { return strings.Count(hubLog(), "reconnected to NATS") > reconnects },
				30*time.Second, 50*time.Millisecond, "the hub did not reconnect to NATS after its restart")
			natsReconnects++
			// The same process goes on: its sync takes events off the bus again.
			c0, err := h.syncCounts()
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				c, err := h.syncCounts()
				if err != nil {
					return false
				}
				done := c.Applied + c.Skipped + c.Dead
				return done > c0.Applied+c0.Skipped+c0.Dead || (c.Backlog != nil && *c.Backlog == 0 && done >= int64(plan.Distinct))
			}, 60*time.Second, 100*time.Millisecond, "the sync made no progress after NATS restarted")
		case "outage":
			pid := h.cmd.Process.Pid
			before503 := o.Stats().Faults[string(sfemu.FaultUnavailable)]
			down, err := o.AddFault(sfemu.Fault{Kind: sfemu.FaultUnavailable})
			require.NoError(t, err)
			downAuth, err := o.AddFault(sfemu.Fault{Kind: sfemu.FaultUnavailable, Operations: []string{"auth"}})
			require.NoError(t, err)
			m0, err := h.scrapeMetrics()
			require.NoError(t, err)
			var sawOpen bool
			for end := time.Now().Add(size.outage); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if m, err := h.scrapeMetrics(); err == nil && breakerState(m) == 2 {
					sawOpen = true
				}
			}
			m1, err := h.scrapeMetrics()
			require.NoError(t, err)
			o.RemoveFault(down)
			o.RemoveFault(downAuth)
			ended := time.Now()
			outage503 = o.Stats().Faults[string(sfemu.FaultUnavailable)] - before503
			breakerSeen = append(breakerSeen, "before the outage: "+breakerFigures(m0), "at its end: "+breakerFigures(m1))
			require.True(t, sawOpen || breakerEntered(m1, "open") > breakerEntered(m0, "open"),
				"the breaker was not seen open in /metrics during a %v outage (%s)", size.outage, breakerFigures(m1))
			var m2 map[string]float64
			require.Eventually(t, func() bool {
				m2, err = h.scrapeMetrics()
				return err == nil && breakerState(m2) == 0 && breakerEntered(m2, "closed") > breakerEntered(m1, "closed")
			}, 2*time.Minute, 100*time.Millisecond, "the breaker did not close after the outage")
			breakerSeen = append(breakerSeen, fmt.Sprintf("closed %v after it: %s", time.Since(ended).Round(100*time.Millisecond), breakerFigures(m2)))
			require.Equal(t, pid, h.cmd.Process.Pid, "one hub process through the outage")
			select {
			case <-h.exited:
				t.Fatalf("the hub exited during the outage")
			default:
			}
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
	}

	<-sendDone
	require.NoError(t, sendErr)
	sentAt := time.Since(began)
	waitConverged(t, o, plan, size.settle)
	h.waitDrained(plan, size.settle)
	final, err := h.scrapeMetrics()
	require.NoError(t, err)
	counts, err := h.syncCounts()
	require.NoError(t, err)
	letters, err := h.deadLetters()
	require.NoError(t, err)
	for _, d := range letters {
		assert.False(t, retryableDeadLetter(d), "dead-lettered for a passing failure: %+v", d)
	}
	assert.Empty(t, letters, "dead letters")
	// The last process's counters add up, nothing being in flight any more:
	// received = applied + skipped + dead + requeued.
	series := func(name, labels string) float64 { return final[name+"{"+labels+"}"] }
	received := series("loyaltyhub_sync_events_received_total", `sync="`+syncLPM+`"`)
	var outcomes float64
	for _, oc := range []string{"applied", "skipped", "dead"} {
		outcomes += series("loyaltyhub_sync_outcomes_total", `outcome="`+oc+`",sync="`+syncLPM+`"`)
	}
	requeued := series("loyaltyhub_sync_requeued_total", `sync="`+syncLPM+`"`)
	assert.Equal(t, received, outcomes+requeued, "the last hub process's counters: received %v, outcomes %v, requeued %v", received, outcomes, requeued)
	h.stop(syscall.SIGTERM)
	o.neverOlder(t)
	checkOutcomes(t, driver, dsn, plan)

	// No connector process outlives its hub: neither the last one's, stopped,
	// nor those of the hubs killed.
	var left []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = slices.DeleteFunc(hubConnectorProcs(t), func(pid int) bool { return slices.Contains(before, pid) })
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range left {
		_, ppid, _ := procStat(pid)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("connector process %d (parent %d, %q) still runs 10s after the test's last hub stopped; killed hubs' connectors were %v",
			pid, ppid, strings.ReplaceAll(string(cmdline), "\x00", " "), killedChildren)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}

	stats := o.Stats()
	t.Logf("figures (%s form, seed %d):", size.name, seed)
	t.Logf("  events: %d deliveries, %d distinct, %d duplicates, %d out of order, %d members; all sent after %v",
		len(plan.Deliveries), plan.Distinct, plan.Duplicates, plan.Reordered, len(plan.Newest), sentAt.Round(time.Second))
	t.Logf("  hub: %d SIGKILLs (their connector processes %v; %d connector processes left), %d starts; NATS restarted %d time(s) (down %v), the hub reconnected",
		kills, killedChildren, len(left), h.starts, natsReconnects, size.natsDown)
	served429 := stats.Faults[string(sfemu.FaultTooManyRequests)]
	t.Logf("  emulator: %d 503s (%d in the %v outage, the rest at %.0f %%), %d 429s in %d burst(s) of %v; %d LoyaltyProgramMember records",
		stats.Faults[string(sfemu.FaultUnavailable)], outage503, size.outage, size.rate503*100, served429, size.bursts, size.burstFor, stats.Records[lpm])
	t.Logf("  calls served: %v", stats.Calls)
	t.Logf("  breaker transitions (one hub process): %s", strings.Join(breakerSeen, "; "))
	t.Logf("  last hub process: breaker %s; received %v, outcomes %v, requeued %v, held writes %v, retries %v; /v1/syncs: %d applied, %d skipped, %d dead",
		breakerFigures(final), received, outcomes, requeued, series("loyaltyhub_sync_held_writes_total", `sync="`+syncLPM+`"`),
		series("loyaltyhub_sync_retries_total", `sync="`+syncLPM+`"`), counts.Applied, counts.Skipped, counts.Dead)
	t.Logf("  store %s; wall time %v", driver, time.Since(began).Round(time.Second))
}
