package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

// deleteRecord deletes a record through the org's REST API, as an admin would.
func deleteRecord(t *testing.T, o *org, object, id string) {
	t.Helper()
	resp, err := http.PostForm(o.URL()+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {sfemu.DefaultClientID}, "client_secret": {sfemu.DefaultClientSecret}})
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodDelete, o.URL()+"/services/data/v63.0/sobjects/"+object+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
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
	require.NoError(t, (&ledgeremu.Sender{URL: h.url()}).Send(context.Background(), plan.Deliveries, nil))

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
