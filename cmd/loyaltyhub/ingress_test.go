package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInputNeverReachesTheBus posts bad requests to the hub wired as
// `run` wires it (real embedded JetStream), with the syncs' consumers
// created but not consuming, and checks each answer and that the stream holds
// nothing of them; then one good event does reach it.
func TestBadInputNeverReachesTheBus(t *testing.T) {
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	ctx := context.Background()
	logger := newLogger(io.Discard, logConfig("error"))
	cfg, maps, err := loadConfig(ctx, h.cfgPath, logger)
	require.NoError(t, err)
	cfg.HTTP.MaxBodyBytes = 4096
	a, err := newApp(ctx, cfg, maps, logger)
	require.NoError(t, err)
	defer a.close()
	go func() { _ = a.http.Serve(a.listener) }()
	defer a.http.Close()

	url := "http://" + a.listener.Addr().String() + "/v1/events/ledger"
	good := func(id string) map[string]any {
		return map[string]any{"specversion": "1.0", "id": id, "source": "urn:ledger", "type": "loyalty.member.upserted",
			"subject": "M-1", "time": "2026-01-01T00:00:00Z", "data": map[string]any{"id": "M-1", "version": 1}}
	}
	with := func(mod func(map[string]any)) []byte {
		e := good("e-1")
		mod(e)
		b, _ := json.Marshal(e)
		return b
	}
	cases := []struct {
		name, body, contentType string
		status                  int
		field, rule             string
	}{
		{"invalid JSON", `{"specversion":"1.0",`, "application/cloudevents+json", 400, "", "JSON"},
		{"missing subject", string(with(func(e map[string]any) { delete(e, "subject") })), "application/cloudevents+json", 422, "subject", ""},
		{"version of the wrong type", string(with(func(e map[string]any) { e["data"].(map[string]any)["version"] = "7" })), "application/cloudevents+json", 422, "data.version", "integer"},
		{"unknown type", string(with(func(e map[string]any) { e["type"] = "loyalty.member.merged" })), "application/cloudevents+json", 422, "type", ""},
		{"body over the size limit", `[` + strings.Repeat(string(with(func(map[string]any) {}))+",", 60) + `{}]`, "application/cloudevents-batch+json", 413, "", "4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := signedPost(url, c.contentType, []byte(c.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			require.Equal(t, c.status, resp.StatusCode, "%s", body)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			if c.field != "" {
				assert.Contains(t, string(body), fmt.Sprintf("%q", c.field), "the problem names the field")
			}
			if c.rule != "" {
				assert.Contains(t, string(body), c.rule, "the problem says what is wrong")
			}
		})
	}
	n, err := a.bus.Stored(ctx, "")
	require.NoError(t, err)
	assert.Zero(t, n, "the bus holds nothing of the rejected requests")

	b, _ := json.Marshal(good("e-good"))
	resp, err := signedPost(url, "application/cloudevents+json", b)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	n, err = a.bus.Stored(ctx, "ledger.member")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), n, "a good event is on the bus once answered 202")
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`sources:
  ledger: {insecure: true}
connectors:
  crm:
    type: salesforce
    config: {login_url: "http://127.0.0.1:1", client_id: x, client_secret: y, batch_size: 500}
syncs:
  members:
    from: ledger.member
    to: cmr
    object: LoyaltyProgramMember
    external_id: Ledger_Member_Id__c
    mapping:
      fields:
        Ledger_Version__c: {from: version, transform: [lowr]}
`), 0o600))
	out, err := runCLI(t, "validate", "-c", bad)
	require.Error(t, err)
	for _, want := range []string{
		"bad.yaml:6:", "batch_size",
		"bad.yaml:10:", `unknown connector "cmr"`, "crm",
		// The inline mapping's problem comes in the same run.
		"bad.yaml:15:55: fields.Ledger_Version__c.transform: unknown transform `lowr`; did you mean `lower`?",
	} {
		assert.Contains(t, out, want)
	}

	good, err := filepath.Abs("../../config/example.yaml")
	require.NoError(t, err)
	out, err = runCLI(t, "validate", "--offline", "-c", good) // the emulator it names is not running here; schema_test.go checks against one
	require.NoError(t, err, out)
	assert.Contains(t, out, "is valid")
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var buf bytes.Buffer
	cmd.SetOut(&buf)
	cmd.SetErr(&buf)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&buf, err)
	}
	return buf.String(), err
}
