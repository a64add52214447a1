package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

type fakeAdmin struct {
	replayed  []int64
	backfills int
}

func (f *fakeAdmin) Syncs(context.Context) ([]openapi.SyncStatus, error) {
	n := 3
	return []openapi.SyncStatus{{Name: "members-to-crm", Topic: "ledger.member", Connector: "crm", Object: "LoyaltyProgramMember", Applied: 7, Skipped: 2, Dead: 1, Backlog: &n}}, nil
}

func (f *fakeAdmin) DeadLetters(_ context.Context, sync string, after int64, limit int) ([]store.DeadLetter, error) {
	all := []store.DeadLetter{
		{ID: 1, Sync: "members-to-crm", EventID: "e1", Key: "M-1", Version: 2, Reason: "INVALID_FIELD: No such column", Code: "INVALID_FIELD", Attempts: 1, Event: []byte(`{"id":"e1"}`), At: time.Unix(0, 0).UTC()},
		{ID: 2, Sync: "members-to-crm", EventID: "e2", Reason: "undecodable message", Code: "DECODE", Attempts: 1, Event: []byte{0xff, 0x00}, At: time.Unix(0, 0).UTC()},
	}
	var out []store.DeadLetter
	for _, d := range all {
		if d.ID > after && (sync == "" || d.Sync == sync) && len(out) < limit {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeAdmin) Replay(_ context.Context, id int64) (store.DeadLetter, error) {
	if id != 1 {
		return store.DeadLetter{}, store.ErrNotFound
	}
	f.replayed = append(f.replayed, id)
	return store.DeadLetter{ID: 1, Sync: "members-to-crm", EventID: "e1", Key: "M-1", Version: 2, Reason: "x", Attempts: 1, Event: []byte(`{}`)}, nil
}

func (f *fakeAdmin) LatestEvent(_ context.Context, sync, key string) (json.RawMessage, string, error) {
	if sync != "members-to-crm" {
		return nil, "", fmt.Errorf("no sync %q: %w", sync, openapi.ErrNotFound)
	}
	if key != "M-1" {
		return nil, "", fmt.Errorf("no event for key %q on ledger.member: %w", key, openapi.ErrNotFound)
	}
	return json.RawMessage(`{"id":"e1","subject":"M-1"}`), "ledger.member", nil
}

func (f *fakeAdmin) StartBackfill(_ context.Context, sync string) (pipeline.BackfillStatus, error) {
	switch {
	case sync == "segments-to-mc":
		return pipeline.BackfillStatus{}, fmt.Errorf("sync %s does not run on this replica: %w", sync, openapi.ErrConflict)
	case sync != "members-to-crm":
		return pipeline.BackfillStatus{}, fmt.Errorf("no sync %q: %w", sync, openapi.ErrNotFound)
	}
	f.backfills++
	return pipeline.BackfillStatus{Running: true, StartedAt: time.Unix(0, 0).UTC(), Scanned: 4}, nil
}

func (f *fakeAdmin) BackfillStatus(_ context.Context, sync string) (pipeline.BackfillStatus, error) {
	if sync != "members-to-crm" || f.backfills == 0 {
		return pipeline.BackfillStatus{}, fmt.Errorf("sync %s has had no backfill: %w", sync, openapi.ErrNotFound)
	}
	return pipeline.BackfillStatus{StartedAt: time.Unix(0, 0).UTC(), FinishedAt: time.Unix(1, 0).UTC(), Scanned: 4, Selected: 3, Applied: 2, Failed: 1,
		Failures: []pipeline.BackfillFailure{{EventID: "e4", Key: "M-3", Reason: "mapping: required"}}}, nil
}

func TestAdminAPI(t *testing.T) {
	admin := &fakeAdmin{}
	const loopback = "127.0.0.1:5555"

	t.Run("without a token only loopback is served", func(t *testing.T) {
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/syncs"})
		require.Equal(t, http.StatusForbidden, res.status)
		assert.Contains(t, res.problem(t).Detail, "http.admin_token")
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs", remoteAddr: loopback})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		assert.JSONEq(t, `{"syncs":[{"name":"members-to-crm","topic":"ledger.member","connector":"crm","object":"LoyaltyProgramMember","applied":7,"skipped":2,"dead":1,"backlog":3}]}`, string(res.body))
	})

	t.Run("with a token it is required", func(t *testing.T) {
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin, c.AdminToken = admin, "s3cret" })
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", remoteAddr: loopback})
		require.Equal(t, http.StatusUnauthorized, res.status)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: map[string]string{"Authorization": "Bearer wrong"}})
		require.Equal(t, http.StatusUnauthorized, res.status)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters?limit=1", header: map[string]string{"Authorization": "Bearer s3cret"}})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		var page struct {
			DeadLetters []map[string]any `json:"dead_letters"`
			NextAfter   int64            `json:"next_after"`
		}
		require.NoError(t, json.Unmarshal(res.body, &page))
		require.Len(t, page.DeadLetters, 1)
		assert.Equal(t, int64(1), page.NextAfter, "a full page points at the next")
		assert.Equal(t, map[string]any{"id": "e1"}, page.DeadLetters[0]["event"])

		res = ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters?after=1", header: map[string]string{"Authorization": "Bearer s3cret"}})
		require.Equal(t, http.StatusOK, res.status)
		require.NoError(t, json.Unmarshal(res.body, &page))
		require.Len(t, page.DeadLetters, 1)
		assert.Equal(t, "/wA=", page.DeadLetters[0]["event_base64"], "an event that is not JSON comes as base64")
		assert.Zero(t, page.NextAfter)
	})

	t.Run("bad parameters, replay and unknown ids", func(t *testing.T) {
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters?limit=0", remoteAddr: loopback})
		require.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "limit", res.problem(t).Errors[0].Field)
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/dead-letters/1/replay", remoteAddr: loopback})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		assert.Equal(t, []int64{1}, admin.replayed)
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/dead-letters/9/replay", remoteAddr: loopback})
		require.Equal(t, http.StatusNotFound, res.status)
		assert.Contains(t, res.problem(t).Detail, "no dead letter 9")
	})

	t.Run("latest event", func(t *testing.T) {
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event?key=M-1", remoteAddr: loopback})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		assert.JSONEq(t, `{"topic":"ledger.member","event":{"id":"e1","subject":"M-1"}}`, string(res.body))
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event", remoteAddr: loopback})
		require.Equal(t, http.StatusBadRequest, res.status, "key is required")
		assert.Equal(t, "key", res.problem(t).Errors[0].Field)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event?key=M-2", remoteAddr: loopback})
		require.Equal(t, http.StatusNotFound, res.status)
		assert.Contains(t, res.problem(t).Detail, `no event for key "M-2"`)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/nope/latest-event?key=M-1", remoteAddr: loopback})
		require.Equal(t, http.StatusNotFound, res.status)
		assert.Contains(t, res.problem(t).Detail, `no sync "nope"`)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event?key=M-1"})
		require.Equal(t, http.StatusForbidden, res.status, "admin rules apply")
	})

	t.Run("backfill", func(t *testing.T) {
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/backfill", remoteAddr: loopback})
		require.Equal(t, http.StatusNotFound, res.status, "none yet")
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/syncs/members-to-crm/backfill", remoteAddr: loopback})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		assert.JSONEq(t, `{"running":true,"started_at":"1970-01-01T00:00:00Z","scanned":4,"selected":0,"applied":0,"skipped":0,"failed":0}`, string(res.body))
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/backfill", remoteAddr: loopback})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		assert.JSONEq(t, `{"running":false,"started_at":"1970-01-01T00:00:00Z","finished_at":"1970-01-01T00:00:01Z","scanned":4,"selected":3,"applied":2,"skipped":0,"failed":1,
			"failures":[{"event_id":"e4","key":"M-3","reason":"mapping: required"}]}`, string(res.body))
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/syncs/segments-to-mc/backfill", remoteAddr: loopback})
		require.Equal(t, http.StatusConflict, res.status)
		assert.Contains(t, res.problem(t).Detail, "does not run on this replica")
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/syncs/nope/backfill", remoteAddr: loopback})
		require.Equal(t, http.StatusNotFound, res.status)
		res = ts.do(t, request{method: http.MethodPost, path: "/v1/syncs/members-to-crm/backfill"})
		require.Equal(t, http.StatusForbidden, res.status, "admin rules apply")
	})
}
