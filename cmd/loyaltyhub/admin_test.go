package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/config"
	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// deleteRecord deletes a record through the org's REST API, as an admin would.
func deleteRecord(t *testing.T, o *org, object, id string) {
	t.Helper()
	resp := orgRequest(t, o, http.MethodDelete, "/sobjects/"+object+"/"+id, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// TestDeadLetterListAndReplayAfterFix: a member is refused by the CRM (a
// legacy record holds its membership number), the event is dead-lettered
// with Salesforce's reason; the admin removes the legacy record and replays
// the dead letter with the CLI; the member is then written.
func TestDeadLetterListAndReplayAfterFix(t *testing.T) {
	o := startOrg(t)
	legacy, err := o.Insert(lpm, map[string]any{"MembershipNumber": "M-000001", "ProgramId": sfemu.DefaultProgramID,
		"EnrollmentDate": "2020-01-01", extID: "LEGACY-1"})
	require.NoError(t, err)
	h := newHub(t, o, hubSetup{})
	h.start()
	hubURL := "http://" + h.addr

	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 5, Events: 5, Seed: 5})
	require.NoError(t, (&ledgeremu.Sender{URL: h.url(), Secret: e2eKey}).Send(context.Background(), plan.Deliveries, nil))

	var out string
	require.Eventually(t, func() bool {
		out, err = runCLI(t, "syncs", "--hub", hubURL)
		return err == nil && strings.Contains(out, "members-to-crm") && strings.Contains(out, "ledger.member  crm.LoyaltyProgramMember  4        0        1")
	}, 30*time.Second, 100*time.Millisecond, "syncs output:\n%s", out)

	out, err = runCLI(t, "dlq", "list", "--hub", hubURL, "--json")
	require.NoError(t, err, out)
	var dls []deadLetter
	require.NoError(t, json.Unmarshal([]byte(out), &dls), out)
	require.Len(t, dls, 1)
	assert.Equal(t, "M-000001", dls[0].Key)
	assert.Equal(t, "DUPLICATE_VALUE", dls[0].Code)
	assert.Contains(t, dls[0].Reason, "MembershipNumber")
	assert.Contains(t, string(dls[0].Event), `"subject": "M-000001"`, "the whole event is kept")

	out, err = runCLI(t, "dlq", "list", "--hub", hubURL)
	require.NoError(t, err)
	assert.Contains(t, out, "DUPLICATE_VALUE")
	assert.Contains(t, out, "1 dead letter(s)")

	// Fix the cause in the org, then replay.
	deleteRecord(t, o, lpm, legacy)
	out, err = runCLI(t, "dlq", "replay", "--all", "--hub", hubURL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 replayed")

	require.Eventually(t, func() bool { return len(o.Find(lpm, extID, "M-000001")) == 1 }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		out, err = runCLI(t, "dlq", "list", "--hub", hubURL)
		return err == nil && strings.Contains(out, "0 dead letter(s)")
	}, 10*time.Second, 100*time.Millisecond, out)
	out, err = runCLI(t, "dlq", "replay", "12345", "--hub", hubURL)
	require.Error(t, err)
	assert.Contains(t, out, "no dead letter 12345")
	h.stop(syscall.SIGTERM)
}

// orgRequest sends a REST request to the org as an admin would.
func orgRequest(t *testing.T, o *org, method, path string, body any) *http.Response {
	t.Helper()
	resp, err := http.PostForm(o.URL()+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {sfemu.DefaultClientID}, "client_secret": {sfemu.DefaultClientSecret}})
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, o.URL()+"/services/data/v63.0"+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// TestMappingPreviewByKeyFromTheRunningHub: `mapping preview --key` maps
// the newest event of a member that the running hub's bus holds, compares
// it with the CRM's record, and says what the sync's version guard would
// do with it; an admin's edit in the CRM shows as drift.
func TestMappingPreviewByKeyFromTheRunningHub(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	h.start()
	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 3, Events: 30, Seed: 11})
	require.NoError(t, (&ledgeremu.Sender{URL: h.url(), Secret: e2eKey}).Send(context.Background(), plan.Deliveries, nil))
	h.waitDrained(plan, 30*time.Second)

	var id string
	for k := range plan.Newest {
		if id == "" || k < id {
			id = k
		}
	}
	newest := plan.Newest[id]
	preview := func() previewJSON {
		t.Helper()
		out, err := runCLI(t, "mapping", "preview", "-c", h.cfgPath, "--sync", syncLPM, "--key", id, "--json")
		require.NoError(t, err, out)
		var p previewJSON
		require.NoError(t, json.Unmarshal([]byte(out), &p), out)
		return p
	}
	p := preview()
	assert.Contains(t, p.From, "the newest event of \""+id+"\" on ledger.member")
	require.NotNil(t, p.Version)
	assert.Equal(t, newest.Version, *p.Version, "the newest version sent")
	require.NotNil(t, p.Guard, "the guard row of the key")
	assert.Equal(t, newest.Version, p.Guard.Version)
	assert.Equal(t, "applied", p.Guard.State)
	assert.Equal(t, p.EventID, p.Guard.EventID)
	assert.Equal(t, "nothing", p.Action)
	assert.Contains(t, p.Why, fmt.Sprintf("it skips this event as a duplicate: version %d is already applied", newest.Version))
	require.NotNil(t, p.Found)
	assert.True(t, *p.Found)
	for _, f := range p.Fields {
		if f.Changed != nil {
			assert.False(t, *f.Changed, "%s: the CRM holds the applied version", f.Field)
		}
	}

	// An admin edits the tier in the CRM: preview shows the drift.
	rec := o.Find(lpm, extID, id)
	require.Len(t, rec, 1)
	other := "Bronze"
	if tierPicklist[newest.Tier] == other {
		other = "Gold"
	}
	resp := orgRequest(t, o, http.MethodPatch, "/sobjects/"+lpm+"/"+rec[0]["Id"].(string), map[string]any{"Tier__c": other})
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	p = preview()
	drift := map[string]bool{}
	for _, f := range p.Fields {
		if f.Changed != nil && *f.Changed {
			drift[f.Field] = true
			assert.Equal(t, other, f.Current)
			assert.Equal(t, tierPicklist[newest.Tier], f.Mapped)
		}
	}
	assert.Equal(t, map[string]bool{"Tier__c": true}, drift)

	_, err := runCLI(t, "mapping", "preview", "-c", h.cfgPath, "--sync", syncLPM, "--key", "M-nobody")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no event for key "M-nobody" on topic ledger.member`)

	h.stop(syscall.SIGTERM)
	_, err = runCLI(t, "mapping", "preview", "-c", h.cfgPath, "--sync", syncLPM, "--key", id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the event is read from the running hub, which does not answer at http://"+h.addr)
	assert.Contains(t, err.Error(), "--input")
	_, err = runCLI(t, "mapping", "preview", "-c", h.cfgPath, "--sync", syncLPM)
	assert.ErrorContains(t, err, "give --key ID")
}

// TestLatestEventOfASegmentMember: a segment sync's key is SEGMENT:MEMBER;
// the newest change of that segment that adds or removes the member is
// found, not merely the segment's newest change.
func TestLatestEventOfASegmentMember(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir()}, nil)
	require.NoError(t, err)
	defer b.Close()
	publish := func(id, segment string, version int64, data string) {
		t.Helper()
		ev := &event.Event{ID: id, Source: "urn:ledger", SpecVersion: "1.0", Type: event.TypeSegmentChanged,
			Subject: segment, Data: json.RawMessage(data), Origin: "ledger", Version: version}
		m, err := ev.ToMessage()
		require.NoError(t, err)
		require.NoError(t, b.Publisher().Publish("ledger.segment", m))
	}
	publish("s1", "VIP", 1, `{"segment_id":"VIP","version":1,"added":["M1","M2"],"removed":[]}`)
	publish("s2", "VIP", 2, `{"segment_id":"VIP","version":2,"added":["M3"],"removed":["M1"]}`)
	publish("s3", "VIP", 3, `{"segment_id":"VIP","version":3,"added":["M4"],"removed":[]}`)
	publish("o1", "LAPSED", 1, `{"segment_id":"LAPSED","version":1,"added":["M2"],"removed":[]}`)

	s := &config.Sync{Name: "segments", From: "ledger.segment", Source: "ledger", Entity: event.EntitySegment}
	idOf := func(key string) string {
		t.Helper()
		raw, topic, err := latestEventFor(ctx, b, s, key)
		require.NoError(t, err, key)
		require.Equal(t, "ledger.segment", topic)
		var ev struct{ ID string }
		require.NoError(t, json.Unmarshal(raw, &ev))
		return ev.ID
	}
	assert.Equal(t, "s2", idOf("VIP:M1"), "the removal is M1's newest change")
	assert.Equal(t, "s1", idOf("VIP:M2"))
	assert.Equal(t, "s3", idOf("VIP:M4"))
	assert.Equal(t, "o1", idOf("LAPSED:M2"))

	_, _, err = latestEventFor(ctx, b, s, "VIP:M9")
	require.ErrorIs(t, err, openapi.ErrNotFound)
	_, _, err = latestEventFor(ctx, b, s, "VIP")
	require.ErrorIs(t, err, openapi.ErrNotFound)
	assert.Contains(t, err.Error(), "a segment sync's keys are SEGMENT:MEMBER")
}

// TestDLQOperatorsAndReadersThroughTheCLI runs the dlq, keys and audit
// commands against a hub with two admin tokens: a read one lists (with
// emails redacted), sums up and reads the audit log but may not discard or
// reset; an operator one discards the superseded dead letter and resets a
// key, both audited.
func TestDLQOperatorsAndReadersThroughTheCLI(t *testing.T) {
	const (
		opsToken    = "ops-token-0123456789abcdef"
		viewerToken = "viewer-token-0123456789abcdef"
	)
	o := startOrg(t)
	legacy, err := o.Insert(lpm, map[string]any{"MembershipNumber": "M-000001", "ProgramId": sfemu.DefaultProgramID,
		"EnrollmentDate": "2020-01-01", extID: "LEGACY-1"})
	require.NoError(t, err)
	h := newHub(t, o, hubSetup{})
	cfg, err := os.ReadFile(h.cfgPath)
	require.NoError(t, err)
	withTokens := strings.Replace(string(cfg), fmt.Sprintf("http: {listen: %q}\n", h.addr), fmt.Sprintf(`http:
  listen: %q
  admin_tokens:
    - {name: ops-alice, role: operator, token: %s}
    - {name: viewer, role: read, token: %s}
`, h.addr, opsToken, viewerToken), 1)
	require.NotEqual(t, string(cfg), withTokens)
	require.NoError(t, os.WriteFile(h.cfgPath, []byte(withTokens), 0o600))
	h.start()
	hubURL := "http://" + h.addr
	as := func(token string, args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, "--hub", hubURL, "--token", token)...)
	}

	plan := ledgeremu.NewPlan(ledgeremu.PlanConfig{Members: 5, Events: 5, Seed: 5})
	require.NoError(t, (&ledgeremu.Sender{URL: h.url(), Secret: e2eKey}).Send(context.Background(), plan.Deliveries, nil))
	var out string
	require.Eventually(t, func() bool {
		out, err = as(viewerToken, "syncs")
		return err == nil && strings.Contains(out, "ledger.member  crm.LoyaltyProgramMember  4        0        1")
	}, 30*time.Second, 100*time.Millisecond, "syncs output:\n%s", out)

	_, err = runCLI(t, "dlq", "list", "--hub", hubURL)
	require.ErrorContains(t, err, "401", "a token is needed")
	_, err = as("viewer-token", "dlq", "list")
	require.ErrorContains(t, err, "401", "a prefix of a token is no token")

	// The reader filters, and sees the member's email redacted.
	out, err = as(viewerToken, "dlq", "list", "--code", "DUPLICATE_VALUE", "--since", "1h", "--json")
	require.NoError(t, err, out)
	var dls []deadLetter
	require.NoError(t, json.Unmarshal([]byte(out), &dls), out)
	require.Len(t, dls, 1)
	assert.Equal(t, "M-000001", dls[0].Key)
	assert.False(t, dls[0].Superseded)
	assert.Contains(t, string(dls[0].Event), `"email": "[redacted]"`)
	assert.Contains(t, string(dls[0].Event), `"first_name": "[redacted]"`)
	assert.NotContains(t, string(dls[0].Event), plan.Newest["M-000001"].Email)
	out, err = as(viewerToken, "dlq", "list", "--code", "INVALID_FIELD")
	require.NoError(t, err, out)
	assert.Contains(t, out, "0 dead letter(s)")
	out, err = as(opsToken, "dlq", "list", "--key", "M-000001", "--json")
	require.NoError(t, err, out)
	assert.Contains(t, out, plan.Newest["M-000001"].Email, "the operator sees the event whole")

	out, err = as(viewerToken, "dlq", "summary")
	require.NoError(t, err, out)
	assert.Regexp(t, `members-to-crm\s+DUPLICATE_VALUE\s+1\s+0\s`, out)
	assert.Contains(t, out, "1 dead letter(s), 0 superseded")

	// The reader may change nothing.
	for _, args := range [][]string{
		{"dlq", "discard", strconv.FormatInt(dls[0].ID, 10)},
		{"dlq", "replay", strconv.FormatInt(dls[0].ID, 10)},
		{"keys", "reset", syncLPM, "M-000001", "--reason", "x"},
	} {
		out, err = as(viewerToken, args...)
		require.Error(t, err, "%v", args)
		assert.Contains(t, out, "needs the operator role", "%v", args)
	}

	// Fixed in the CRM, and a newer version of the member arrives: the dead
	// letter is superseded, and the operator discards it.
	deleteRecord(t, o, lpm, legacy)
	var newer ledgeremu.CloudEvent
	for _, d := range plan.Deliveries {
		if d.Subject == "M-000001" {
			newer = d
		}
	}
	newer.ID, newer.Data.Version = "evt-newer", newer.Data.Version+10
	require.NoError(t, (&ledgeremu.Sender{URL: h.url(), Secret: e2eKey}).Send(context.Background(), []ledgeremu.CloudEvent{newer}, nil))
	require.Eventually(t, func() bool {
		out, err = as(viewerToken, "dlq", "list", "--superseded")
		return err == nil && strings.Contains(out, "1 dead letter(s), 1 superseded")
	}, 30*time.Second, 100*time.Millisecond, out)
	out, err = as(opsToken, "dlq", "discard", "--superseded", "--sync", syncLPM, "--reason", "the CRM holds a newer version")
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("dead letter %d discarded", dls[0].ID))
	assert.Contains(t, out, "1 dead letter(s) discarded")
	out, err = as(viewerToken, "dlq", "list")
	require.NoError(t, err, out)
	assert.Contains(t, out, "0 dead letter(s)")
	out, err = as(opsToken, "dlq", "discard", "12345")
	require.Error(t, err)
	assert.Contains(t, out, "dead letter 12345: there is no such dead letter")

	// A key reset: the guard row goes; the next event applies whatever its version.
	_, err = as(opsToken, "keys", "reset", syncLPM, "M-000002")
	require.ErrorContains(t, err, "--reason is required")
	out, err = as(opsToken, "keys", "reset", syncLPM, "M-000002", "--reason", "testing the reset")
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("it held version %d, applied", plan.Newest["M-000002"].Version))
	out, err = as(opsToken, "keys", "reset", syncLPM, "M-000002", "--reason", "again")
	require.Error(t, err)
	assert.Contains(t, out, "neither a version-guard row nor dead letters")

	out, err = as(viewerToken, "audit")
	require.NoError(t, err, out)
	// The audit names keys as the hub keeps them: folded for a
	// case-insensitive target (m-000001).
	assert.Regexp(t, `(?i)ops-alice \(operator\)\s+discard\s+members-to-crm\s+M-000001\s+`+strconv.FormatInt(dls[0].ID, 10)+`\s+v\d+ applied\s+the CRM holds a newer version`, out)
	assert.Regexp(t, `(?i)ops-alice \(operator\)\s+reset_key\s+members-to-crm\s+M-000002\s+-\s+v\d+ applied\s+testing the reset`, out)
	assert.Contains(t, out, "2 audit entries")
	h.stop(syscall.SIGTERM)
}
