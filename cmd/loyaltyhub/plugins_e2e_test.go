package main

// End-to-end tests of connectors as plugin processes: the example vendor's
// vouchers flowing back through the hub into the Salesforce emulator, and the
// Salesforce connector's process killed 20 times during a 10,000-event run.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	geoemu "github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers/emulator"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

var (
	geoOnce   sync.Once
	geoBinary string
	geoErr    error
)

// buildGeoOffers builds the example vendor plugin once per test run.
func buildGeoOffers(t *testing.T) (path, sum string) {
	t.Helper()
	geoOnce.Do(func() {
		geoBinary = filepath.Join(filepath.Dir(hubBinary), "geooffers")
		out, err := exec.Command("go", "build", "-o", geoBinary, "../../plugins/examples/geooffers").CombinedOutput()
		if err != nil {
			geoErr = fmt.Errorf("building geooffers: %v\n%s", err, out)
		}
	})
	require.NoError(t, geoErr)
	sum, err := host.FileSHA256(geoBinary)
	require.NoError(t, err)
	return geoBinary, sum
}

func postEvents(t *testing.T, url string, events []map[string]any) {
	t.Helper()
	body, err := json.Marshal(events)
	require.NoError(t, err)
	resp, err := signedPost(url, "application/cloudevents-batch+json", body)
	require.NoError(t, err)
	defer resp.Body.Close()
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(resp.Body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, answer.String())
}

func segmentChange(segment string, version int, added []string) map[string]any {
	return map[string]any{"specversion": "1.0", "id": fmt.Sprintf("seg-%s-v%d", segment, version), "source": "urn:ledger",
		"type": "loyalty.segment.membership.changed", "subject": segment,
		"data": map[string]any{"segment_id": segment, "version": version, "added": added, "removed": []string{}}}
}

func TestEndToEndVendorVouchersFlowToCRM(t *testing.T) {
	geoPath, geoSum := buildGeoOffers(t)
	const apiKey = "geo-e2e-key"
	vendor := geoemu.New(apiKey)
	vendorSrv := httptest.NewServer(vendor)
	t.Cleanup(vendorSrv.Close)

	o := startOrg(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	lpmMapping, _ := filepath.Abs("../../config/mappings/member-to-lpm.yaml")
	voucherMapping, _ := filepath.Abs("../../config/mappings/voucher-to-crm.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
http: {listen: %q}
progress: {interval: 1s}
sources: {ledger: {insecure: true}}
connectors:
  crm:
    type: salesforce
    config: {login_url: %q, client_id: %s, client_secret: %s}
  geo:
    type: plugin:geooffers
    plugin: {path: %q, sha256: %s}
    read: {objects: [vouchers], interval: 200ms}
    config: {base_url: %q, api_key: %s}
syncs:
  members-to-crm:
    from: ledger.member
    to: crm
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping: %q
  members-to-geo:
    from: ledger.member
    to: geo
    object: members
    external_id: external_id
    mapping:
      fields:
        email: email
        first_name: first_name
        tier: tier
        opt_in: {value: true}
  segments-to-geo:
    from: ledger.segment
    to: geo
    object: segment_memberships
    external_id: key
    mapping:
      fields:
        segment: segment_id
        member_external_id: member_id
    retry: {max_attempts: 50, initial_interval: 50ms, max_interval: 500ms}
  vouchers-to-crm:
    from: geo.voucher
    to: crm
    object: Voucher
    external_id: Ledger_Voucher_Id__c
    mapping: %q
    retry: {max_attempts: 50, initial_interval: 50ms, max_interval: 500ms}
`, filepath.Join(dir, "data"), addr, o.URL(), sfemu.DefaultClientID, sfemu.DefaultClientSecret,
		geoPath, geoSum, vendorSrv.URL, apiKey, lpmMapping, voucherMapping)
	h := newHub(t, o, hubSetup{})
	h.addr = addr
	require.NoError(t, os.WriteFile(h.cfgPath, []byte(cfg), 0o600))
	h.start()

	// 50 members, then two segments: geo-coffee (members 1-30) and geo-fuel (20-50).
	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 50, Events: 50, Seed: 3})
	require.NoError(t, (&ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 50}).Send(context.Background(), plan.Deliveries, nil))
	var coffee, fuel []string
	for i := 1; i <= 50; i++ {
		id := fmt.Sprintf("M-%06d", i)
		if i <= 30 {
			coffee = append(coffee, id)
		}
		if i >= 20 {
			fuel = append(fuel, id)
		}
	}
	postEvents(t, h.url(), []map[string]any{segmentChange("geo-coffee", 1, coffee), segmentChange("geo-fuel", 1, fuel)})

	// The vendor issues one voucher per membership; the hub reads them back
	// and writes them to the CRM, linked to the member's LoyaltyProgramMember.
	const want = 30 + 31
	require.Eventually(t, func() bool { return len(vendor.Vouchers()) == want }, time.Minute, 100*time.Millisecond,
		"vouchers issued by the vendor: %d, want %d", len(vendor.Vouchers()), want)
	require.Eventually(t, func() bool { return len(o.Records("Voucher")) == want }, time.Minute, 100*time.Millisecond,
		"vouchers in the CRM: %d, want %d", len(o.Records("Voucher")), want)

	lpmIDs := map[string]string{}
	for _, r := range o.Records(lpm) {
		lpmIDs[r[extID].(string)] = r["Id"].(string)
	}
	for id, v := range vendor.Vouchers() {
		recs := o.Find("Voucher", "Ledger_Voucher_Id__c", id)
		require.Len(t, recs, 1, "voucher %s in the CRM", id)
		r := recs[0]
		require.Equal(t, v.Code, r["VoucherCode"])
		require.Equal(t, "Issued", r["Status"])
		require.Equal(t, lpmIDs[v.MemberID], r["LoyaltyProgramMemberId"], "voucher %s is linked to member %s's LoyaltyProgramMember", id, v.MemberID)
		require.Equal(t, v.IssuedAt.UTC().Format("2006-01-02"), r["EffectiveDate"])
	}
	h.stop(syscall.SIGTERM)
}

// childPIDs returns the pids of the processes whose parent is pid and whose
// command line contains want.
func childPIDs(t *testing.T, pid int, want string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), want) {
			out = append(out, child)
		}
	}
	return out
}

func TestEndToEndConnectorProcessKilled20Times(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find the connector process")
	}
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	h.start()
	plan := e2ePlan()

	sent := make(chan error, 1)
	go func() {
		// Spread the 10,000 events over about 8 seconds so the kills land
		// while records are flowing.
		sender := &ledgeremu.Sender{URL: h.url(), Secret: e2eKey, BatchSize: 100, RetryFor: 3 * time.Minute}
		sent <- sender.Send(context.Background(), plan.Deliveries, func(int) { time.Sleep(70 * time.Millisecond) })
	}()
	kills := 0
	for kills < 20 {
		time.Sleep(300 * time.Millisecond)
		pids := childPIDs(t, h.cmd.Process.Pid, "connector serve salesforce")
		if len(pids) == 0 {
			continue // being restarted
		}
		require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
		kills++
	}
	require.NoError(t, <-sent)
	waitConverged(t, o, plan, 3*time.Minute)
	h.waitDrained(plan, time.Minute)

	// The hub never exited.
	require.NoError(t, h.cmd.Process.Signal(syscall.Signal(0)), "the hub process is alive")
	h.stop(syscall.SIGTERM)
	logs, err := os.ReadFile(h.logs.Name())
	require.NoError(t, err)
	// Each kill is logged (go-plugin logs the exit, the host the restart; a
	// process killed while starting is replaced by the next start).
	killed := strings.Count(string(logs), `error="signal: killed"`)
	restarts := strings.Count(string(logs), `msg="plugin restarted"`)
	require.Equal(t, kills, killed, "each kill is logged")
	require.GreaterOrEqual(t, restarts, kills-strings.Count(string(logs), `msg="plugin restart failed"`), "each kill is followed by a logged restart")
	require.Equal(t, 1, h.starts, "the hub was never restarted")
	o.neverOlder(t)
	checkOutcomes(t, "sqlite", filepath.Join(h.dir, "data", "state.db"), plan)
	t.Logf("%d kills, %d restarts logged", kills, restarts)
}
