package openapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
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

func (f *fakeAdmin) DeadLetters(_ context.Context, filter store.DeadLetterFilter, after int64, limit int) ([]store.DeadLetter, error) {
	sync := filter.Sync
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

func (f *fakeAdmin) SummarizeDeadLetters(context.Context, store.DeadLetterFilter) ([]store.DeadLetterGroup, error) {
	return nil, nil
}

func (f *fakeAdmin) DiscardDeadLetters(context.Context, store.Selection, store.Operator) (store.Discarded, error) {
	return store.Discarded{}, errors.New("not in this fake")
}

func (f *fakeAdmin) ResetKey(context.Context, string, string, store.Operator) (store.KeyReset, error) {
	return store.KeyReset{}, errors.New("not in this fake")
}

func (f *fakeAdmin) AuditLog(context.Context, int64, int) ([]store.AuditEntry, error) {
	return nil, nil
}

func (f *fakeAdmin) Replay(_ context.Context, id int64, _ store.Operator) (store.DeadLetter, error) {
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

// storeAdmin serves the dead-letter endpoints from a real state store
// (SQLite in a temporary directory); the rest comes from fakeAdmin.
type storeAdmin struct {
	*fakeAdmin
	st     store.Store
	access openapi.AdminAccess
}

func (a *storeAdmin) AdminAccess() openapi.AdminAccess { return a.access }

func (a *storeAdmin) DeadLetters(ctx context.Context, f store.DeadLetterFilter, after int64, limit int) ([]store.DeadLetter, error) {
	return a.st.QueryDeadLetters(ctx, f, after, limit)
}

func (a *storeAdmin) SummarizeDeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetterGroup, error) {
	return a.st.SummarizeDeadLetters(ctx, f)
}

func (a *storeAdmin) DiscardDeadLetters(ctx context.Context, sel store.Selection, by store.Operator) (store.Discarded, error) {
	return a.st.DiscardDeadLetters(ctx, sel, by)
}

func (a *storeAdmin) Replay(ctx context.Context, id int64, by store.Operator) (store.DeadLetter, error) {
	return a.st.Requeue(ctx, id, by)
}

func (a *storeAdmin) ResetKey(ctx context.Context, sync, key string, by store.Operator) (store.KeyReset, error) {
	if sync != adminSync {
		return store.KeyReset{}, fmt.Errorf("no sync %q: %w", sync, openapi.ErrNotFound)
	}
	return a.st.ResetKey(ctx, sync, key, store.Target{}, by)
}

func (a *storeAdmin) AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	return a.st.AuditLog(ctx, after, limit)
}

// LatestEvent is a member's event with personal data.
func (a *storeAdmin) LatestEvent(context.Context, string, string) (json.RawMessage, string, error) {
	return json.RawMessage(piiEvent("latest", "M-1", 3)), "ledger.member", nil
}

const (
	adminSync     = "members-to-crm"
	operatorToken = "operator-token-0123456789"
	viewerToken   = "viewer-token-0123456789"
)

func piiEvent(id, key string, version int64) string {
	return fmt.Sprintf(`{"id":%q,"subject":%q,"type":"loyalty.member.upserted","data":{"id":%q,"version":%d,`+
		`"email":"ada@example.com","first_name":"Ada","tier":"gold","points_balance":1200,`+
		`"contacts":[{"email":"grace@example.com","kind":"work"},{"kind":"none"}],"address":{"city":"London"}}}`, id, key, key, version)
}

// newStoreAdmin opens a store and dead-letters one event per key (at
// version 1, code INVALID_FIELD unless the key says DUP).
func newStoreAdmin(t *testing.T, access openapi.AdminAccess, keys ...string) *storeAdmin {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	for _, k := range keys {
		it := store.Item{EventID: "evt-" + k, Key: k, Version: 1}
		_, err := st.Begin(t.Context(), adminSync, []store.Item{it})
		require.NoError(t, err)
		code := "INVALID_FIELD"
		if strings.HasPrefix(k, "DUP") {
			code = "DUPLICATE_VALUE"
		}
		require.NoError(t, st.Finish(t.Context(), adminSync, []store.Result{{Item: it, Outcome: store.Dead, Code: code, Attempts: 1,
			Reason: code + ": Email: invalid email address: ada@example.com", Event: json.RawMessage(piiEvent(it.EventID, k, 1))}}))
	}
	return &storeAdmin{fakeAdmin: &fakeAdmin{}, st: st, access: access}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func roles() openapi.AdminAccess {
	return openapi.AdminAccess{
		Tokens: []openapi.AdminToken{
			{Name: "ops-alice", Role: openapi.RoleOperator, Token: operatorToken},
			{Name: "viewer", Role: openapi.RoleRead, Token: viewerToken},
		},
		RedactFields: []string{"email", "first_name", "contacts.email", "phone"},
	}
}

type deadLetterPage struct {
	DeadLetters []struct {
		ID         int64           `json:"id"`
		Key        string          `json:"key"`
		Code       string          `json:"code"`
		Reason     string          `json:"reason"`
		Event      json.RawMessage `json:"event"`
		Superseded bool            `json:"superseded"`
	} `json:"dead_letters"`
	NextAfter int64 `json:"next_after"`
}

func pageOf(t *testing.T, res response) deadLetterPage {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var p deadLetterPage
	require.NoError(t, json.Unmarshal(res.body, &p))
	return p
}

func TestAdminRoles(t *testing.T) {
	admin := newStoreAdmin(t, roles(), "M-1")
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })

	t.Run("a wrong token, a prefix of a real one and none are 401", func(t *testing.T) {
		for _, h := range []map[string]string{
			nil, bearer("wrong"), bearer(viewerToken[:10]), bearer(viewerToken + "x"), bearer(""),
			{"Authorization": viewerToken}, {"Authorization": "Basic " + viewerToken},
		} {
			res := ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: h, remoteAddr: "127.0.0.1:5555"})
			require.Equal(t, http.StatusUnauthorized, res.status, "%v: %s", h, res.body)
			assert.Equal(t, `Bearer realm="loyaltyhub admin"`, res.header.Get("WWW-Authenticate"))
			assert.NotContains(t, string(res.body), "viewer", "which token is never said")
		}
	})

	t.Run("the read role sees redacted events", func(t *testing.T) {
		page := pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(viewerToken)}))
		require.Len(t, page.DeadLetters, 1)
		d := page.DeadLetters[0]
		assert.JSONEq(t, `{"id":"evt-M-1","subject":"M-1","type":"loyalty.member.upserted","data":{"id":"M-1","version":1,`+
			`"email":"[redacted]","first_name":"[redacted]","tier":"gold","points_balance":1200,`+
			`"contacts":[{"email":"[redacted]","kind":"work"},{"kind":"none"}],"address":{"city":"London"}}}`, string(d.Event))
		assert.Equal(t, "INVALID_FIELD: Email: invalid email address: [redacted]", d.Reason, "the values are hidden in the reason too")
		assert.NotContains(t, string(ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(viewerToken)}).body), "example.com")

		res := ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event?key=M-1", header: bearer(viewerToken)})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		assert.NotContains(t, string(res.body), "ada@example.com")
		assert.NotContains(t, string(res.body), "grace@example.com")
		assert.Contains(t, string(res.body), `"email":"[redacted]"`)
		assert.Contains(t, string(res.body), `"tier":"gold"`)
	})

	t.Run("the operator role sees events whole", func(t *testing.T) {
		page := pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(operatorToken)}))
		require.Len(t, page.DeadLetters, 1)
		assert.JSONEq(t, piiEvent("evt-M-1", "M-1", 1), string(page.DeadLetters[0].Event))
		assert.Contains(t, page.DeadLetters[0].Reason, "ada@example.com")
		res := ts.do(t, request{method: http.MethodGet, path: "/v1/syncs/members-to-crm/latest-event?key=M-1", header: bearer(operatorToken)})
		require.Equal(t, http.StatusOK, res.status)
		assert.Contains(t, string(res.body), "ada@example.com")
	})

	t.Run("the read role may read everything", func(t *testing.T) {
		for _, path := range []string{"/v1/syncs", "/v1/dead-letters?code=INVALID_FIELD", "/v1/dead-letters/summary", "/v1/audit"} {
			res := ts.do(t, request{method: http.MethodGet, path: path, header: bearer(viewerToken)})
			assert.Equal(t, http.StatusOK, res.status, "%s: %s", path, res.body)
		}
	})

	t.Run("the read role may change nothing", func(t *testing.T) {
		id := pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(viewerToken)})).DeadLetters[0].ID
		for _, r := range []request{
			{path: fmt.Sprintf("/v1/dead-letters/%d/replay", id)},
			{path: "/v1/dead-letters/discard", contentType: "application/json", body: []byte(fmt.Sprintf(`{"ids":[%d]}`, id))},
			{path: "/v1/syncs/members-to-crm/keys/M-1/reset", contentType: "application/json", body: []byte(`{"reason":"x"}`)},
			{path: "/v1/syncs/members-to-crm/backfill"},
		} {
			r.method, r.header = http.MethodPost, bearer(viewerToken)
			res := ts.do(t, r)
			require.Equal(t, http.StatusForbidden, res.status, "%s: %s", r.path, res.body)
			p := res.problem(t)
			assert.Equal(t, "urn:loyaltyhub:problem:admin-role", p.Type)
			assert.Contains(t, p.Detail, "needs the operator role")
			assert.Contains(t, p.Detail, `token "viewer" has the read role`)
		}
		entries, err := admin.st.AuditLog(t.Context(), 0, 10)
		require.NoError(t, err)
		assert.Empty(t, entries, "nothing was done")
		assert.Len(t, pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(operatorToken)})).DeadLetters, 1)
		assert.Zero(t, admin.backfills)
	})

	t.Run("an operator replays, audited under its name", func(t *testing.T) {
		id := pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer(operatorToken)})).DeadLetters[0].ID
		res := ts.do(t, request{method: http.MethodPost, path: fmt.Sprintf("/v1/dead-letters/%d/replay", id), header: bearer(operatorToken)})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/audit", header: bearer(viewerToken)})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		var audit struct {
			Entries []store.AuditEntry `json:"entries"`
		}
		require.NoError(t, json.Unmarshal(res.body, &audit))
		require.Len(t, audit.Entries, 1)
		assert.Equal(t, "ops-alice", audit.Entries[0].Actor)
		assert.Equal(t, "operator", audit.Entries[0].Role)
		assert.Equal(t, store.AuditReplay, audit.Entries[0].Action)
	})

	t.Run("http.admin_token alone is an operator named admin", func(t *testing.T) {
		plain := newStoreAdmin(t, openapi.AdminAccess{}, "M-9")
		ts := newTestServer(t, nil, func(c *openapi.ServerConfig) {
			c.Admin = &struct{ openapi.Admin }{plain} // not AccessControlled
			c.AdminToken = "s3cret"
		})
		id := pageOf(t, ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer("s3cret")})).DeadLetters[0].ID
		res := ts.do(t, request{method: http.MethodPost, path: "/v1/dead-letters/discard", header: bearer("s3cret"),
			contentType: "application/json", body: []byte(fmt.Sprintf(`{"ids":[%d],"reason":"test"}`, id))})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		entries, err := plain.st.AuditLog(t.Context(), 0, 10)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		assert.Equal(t, "admin", entries[0].Actor)
		res = ts.do(t, request{method: http.MethodGet, path: "/v1/dead-letters", header: bearer("s3cre")})
		assert.Equal(t, http.StatusUnauthorized, res.status)
	})
}

func TestAdminDeadLetterFiltersSummaryAndDiscard(t *testing.T) {
	const loopback = "127.0.0.1:5555"
	admin := newStoreAdmin(t, openapi.AdminAccess{}, "M-1", "M-2", "DUP-3", "M-4")
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
	get := func(path string) response {
		t.Helper()
		return ts.do(t, request{method: http.MethodGet, path: path, remoteAddr: loopback})
	}
	keys := func(p deadLetterPage) []string {
		var out []string
		for _, d := range p.DeadLetters {
			out = append(out, d.Key)
		}
		return out
	}
	// M-2 v2 is applied: M-2's dead letter is superseded.
	v2 := store.Item{EventID: "evt-M-2-v2", Key: "M-2", Version: 2}
	_, err := admin.st.Begin(t.Context(), adminSync, []store.Item{v2})
	require.NoError(t, err)
	require.NoError(t, admin.st.Finish(t.Context(), adminSync, []store.Result{{Item: v2, Outcome: store.Applied}}))

	assert.Equal(t, []string{"DUP-3"}, keys(pageOf(t, get("/v1/dead-letters?code=DUPLICATE_VALUE"))))
	assert.Equal(t, []string{"M-4"}, keys(pageOf(t, get("/v1/dead-letters?key=M-4&sync="+adminSync))))
	assert.Equal(t, []string{"M-2"}, keys(pageOf(t, get("/v1/dead-letters?superseded=true"))))
	all := pageOf(t, get("/v1/dead-letters"))
	assert.Equal(t, []string{"M-1", "M-2", "DUP-3", "M-4"}, keys(all))
	assert.True(t, all.DeadLetters[1].Superseded)
	assert.False(t, all.DeadLetters[0].Superseded)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	assert.Empty(t, keys(pageOf(t, get("/v1/dead-letters?since="+future))))
	assert.Len(t, keys(pageOf(t, get("/v1/dead-letters?until="+future))), 4)
	page := pageOf(t, get("/v1/dead-letters?limit=3&code=INVALID_FIELD"))
	assert.Equal(t, []string{"M-1", "M-2", "M-4"}, keys(page))
	assert.NotZero(t, page.NextAfter, "a full page points at the next")

	res := get("/v1/dead-letters?since=yesterday")
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, "since", res.problem(t).Errors[0].Field)
	res = get("/v1/dead-letters?since=" + future + "&until=" + future)
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, "until", res.problem(t).Errors[0].Field)
	res = get("/v1/dead-letters?superseded=maybe")
	require.Equal(t, http.StatusBadRequest, res.status)

	res = get("/v1/dead-letters/summary")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var sum struct {
		Groups            []store.DeadLetterGroup `json:"groups"`
		Total, Superseded int64
	}
	require.NoError(t, json.Unmarshal(res.body, &sum))
	require.Len(t, sum.Groups, 2)
	assert.Equal(t, "DUPLICATE_VALUE", sum.Groups[0].Code)
	assert.Equal(t, int64(1), sum.Groups[0].Count)
	assert.Equal(t, "INVALID_FIELD", sum.Groups[1].Code)
	assert.Equal(t, int64(3), sum.Groups[1].Count)
	assert.Equal(t, int64(1), sum.Groups[1].Superseded)
	assert.Equal(t, int64(4), sum.Total)
	assert.Equal(t, int64(1), sum.Superseded)

	discard := func(body string) response {
		t.Helper()
		return ts.do(t, request{method: http.MethodPost, path: "/v1/dead-letters/discard", remoteAddr: loopback,
			contentType: "application/json", body: []byte(body)})
	}
	for _, bad := range []string{`{}`, `{"filter":{}}`, `{"reason":"x"}`, `{"ids":[]}`, `{"ids":[0]}`, `{"filter":{"colour":"red"}}`, `[1]`} {
		res := discard(bad)
		assert.Equal(t, http.StatusBadRequest, res.status, "%s: %s", bad, res.body)
	}
	res = ts.do(t, request{method: http.MethodPost, path: "/v1/dead-letters/discard", remoteAddr: loopback,
		contentType: "application/json", body: []byte(`{"filter":{"code":"X"}, "pad":"` + strings.Repeat("x", 300<<10) + `"}`)})
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.status)

	// The superseded ones, by filter.
	res = discard(`{"filter":{"superseded":true},"reason":"the CRM has newer versions"}`)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var d struct {
		Discarded []struct {
			Key        string `json:"key"`
			Superseded bool   `json:"superseded"`
		} `json:"discarded"`
		NotFound []int64 `json:"not_found"`
		More     bool    `json:"more"`
		AuditID  int64   `json:"audit_id"`
	}
	require.NoError(t, json.Unmarshal(res.body, &d))
	require.Len(t, d.Discarded, 1)
	assert.Equal(t, "M-2", d.Discarded[0].Key)
	assert.False(t, d.More)
	assert.NotZero(t, d.AuditID)

	// By ids: one gone already, one unknown.
	res = discard(fmt.Sprintf(`{"ids":[%d,%d,999]}`, all.DeadLetters[0].ID, all.DeadLetters[1].ID))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	require.NoError(t, json.Unmarshal(res.body, &d))
	require.Len(t, d.Discarded, 1)
	assert.Equal(t, "M-1", d.Discarded[0].Key)
	assert.Equal(t, []int64{all.DeadLetters[1].ID, 999}, d.NotFound)

	// By filter, a page at a time.
	res = discard(`{"filter":{"sync":"` + adminSync + `"},"limit":1}`)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	require.NoError(t, json.Unmarshal(res.body, &d))
	assert.Len(t, d.Discarded, 1)
	assert.True(t, d.More)
	assert.Equal(t, []string{"M-4"}, keys(pageOf(t, get("/v1/dead-letters"))))

	res = get("/v1/audit?limit=2")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var audit struct {
		Entries   []store.AuditEntry `json:"entries"`
		NextAfter int64              `json:"next_after"`
	}
	require.NoError(t, json.Unmarshal(res.body, &audit))
	require.Len(t, audit.Entries, 2)
	assert.Equal(t, "loopback", audit.Entries[0].Actor)
	assert.Equal(t, "the CRM has newer versions", audit.Entries[0].Reason)
	require.NotNil(t, audit.Entries[0].Filter)
	assert.True(t, audit.Entries[0].Filter.Superseded)
	assert.NotZero(t, audit.NextAfter)
	res = get(fmt.Sprintf("/v1/audit?after=%d", audit.NextAfter))
	require.NoError(t, json.Unmarshal(res.body, &audit))
	assert.Len(t, audit.Entries, 1)
	assert.Zero(t, audit.NextAfter)
}

// TestAdminResetFrozenKey: a key frozen at version 2^63-1 is reset through
// the API; then the key's version 1 applies.
func TestAdminResetFrozenKey(t *testing.T) {
	admin := newStoreAdmin(t, roles())
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.Admin = admin })
	ctx := t.Context()
	frozen := store.Item{EventID: "evt-absurd", Key: "M-7", Version: math.MaxInt64}
	_, err := admin.st.Begin(ctx, adminSync, []store.Item{frozen})
	require.NoError(t, err)
	require.NoError(t, admin.st.Finish(ctx, adminSync, []store.Result{{Item: frozen, Outcome: store.Applied}}))
	v1 := store.Item{EventID: "evt-v1", Key: "M-7", Version: 1}
	d, err := admin.st.Begin(ctx, adminSync, []store.Item{v1})
	require.NoError(t, err)
	require.Equal(t, []store.Decision{store.SkipStale}, d, "frozen")

	reset := func(path, body string) response {
		t.Helper()
		r := request{method: http.MethodPost, path: path, header: bearer(operatorToken)}
		if body != "" {
			r.contentType, r.body = "application/json", []byte(body)
		}
		return ts.do(t, r)
	}
	const path = "/v1/syncs/" + adminSync + "/keys/M-7/reset"
	for _, body := range []string{"", `{}`, `{"reason":""}`, `{"reason":"   "}`, `{"reason":"x","force":true}`} {
		res := reset(path, body)
		assert.Equal(t, http.StatusBadRequest, res.status, "%q: %s", body, res.body)
	}
	res := reset("/v1/syncs/nope/keys/M-7/reset", `{"reason":"x"}`)
	assert.Equal(t, http.StatusNotFound, res.status)
	res = reset("/v1/syncs/"+adminSync+"/keys/M-nobody/reset", `{"reason":"x"}`)
	assert.Equal(t, http.StatusNotFound, res.status)
	assert.Contains(t, res.problem(t).Detail, "neither a version-guard row nor dead letters")

	res = reset(path, `{"reason":"version 2^63-1 came from a bad export"}`)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var out struct {
		Sync, Key string
		Guard     struct {
			Version int64  `json:"version"`
			State   string `json:"state"`
			EventID string `json:"event_id"`
		}
		Discarded []json.RawMessage `json:"discarded"`
		AuditID   int64             `json:"audit_id"`
	}
	require.NoError(t, json.Unmarshal(res.body, &out))
	assert.Equal(t, adminSync, out.Sync)
	assert.Equal(t, "M-7", out.Key)
	assert.Equal(t, int64(math.MaxInt64), out.Guard.Version, "what the row held")
	assert.Equal(t, "applied", out.Guard.State)
	assert.Equal(t, "evt-absurd", out.Guard.EventID)
	assert.Empty(t, out.Discarded)

	d, err = admin.st.Begin(ctx, adminSync, []store.Item{v1})
	require.NoError(t, err)
	assert.Equal(t, []store.Decision{store.Apply}, d, "version 1 applies after the reset")

	entries, err := admin.st.AuditLog(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, out.AuditID, entries[0].ID)
	assert.Equal(t, store.AuditResetKey, entries[0].Action)
	assert.Equal(t, "ops-alice", entries[0].Actor)
	assert.Equal(t, "version 2^63-1 came from a bad export", entries[0].Reason)
	require.Len(t, entries[0].Guards, 1)
	assert.Equal(t, int64(math.MaxInt64), entries[0].Guards[0].Version)
}
