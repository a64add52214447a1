package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/plugintest"
)

var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugins-host-test")
	if err != nil {
		panic(err)
	}
	bins, err = plugintest.Build(dir,
		plugintest.Module+"/plugins/testdata/fakeplugin",
		plugintest.Module+"/plugins/testdata/wrongversion",
		plugintest.Module+"/plugins/testdata/selfhost",
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuf collects the hub's log as JSON lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log records whose msg is msg.
func (b *logBuf) records(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func fakeConfig(t *testing.T, name string) host.Config {
	t.Helper()
	sum, err := host.FileSHA256(bins["fakeplugin"])
	require.NoError(t, err)
	return host.Config{Name: name, Path: bins["fakeplugin"], SHA256: sum, HealthInterval: -1}
}

func start(t *testing.T, cfg host.Config, logger *slog.Logger) *host.Plugin {
	t.Helper()
	p, err := host.Start(context.Background(), cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func configure(t *testing.T, p *host.Plugin, cfg fakeconn.Config) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, p.Configure(context.Background(), raw))
}

func things(from, n int) connectors.WriteRequest {
	req := connectors.WriteRequest{Object: "Thing", Operation: connectors.Upsert, ExternalIDField: "Key__c"}
	for i := from; i < from+n; i++ {
		req.Records = append(req.Records, connectors.Record{Key: fmt.Sprintf("k%05d", i), Fields: map[string]any{"n": int64(i)}})
	}
	return req
}

func TestPluginCarriesTheContract(t *testing.T) {
	ctx := context.Background()
	logger, logs := newLogger()
	p := start(t, fakeConfig(t, "fakey"), logger)

	d, err := p.Describe(ctx)
	require.NoError(t, err)
	assert.Equal(t, "fake", d.Name)
	assert.Equal(t, 200, d.MaxBatch)
	assert.Equal(t, []string{"Thing"}, d.Objects)
	assert.Equal(t, []string{"Thing"}, d.Writes, "writes cross the wire")
	assert.Equal(t, []string{"Thing"}, d.Reads, "reads cross the wire")
	assert.Equal(t, []string{"member"}, d.Entities, "entities cross the wire")
	assert.JSONEq(t, `{"type":"object","properties":{"dir":{"type":"string"},"write_delay_ms":{"type":"integer"}}}`, string(d.ConfigSchema))
	assert.Equal(t, host.Capabilities{Write: true, Read: true, DescribeObject: true, SDK: "loyaltyhub-go-sdk/1"}, p.Capabilities())

	t.Run("bad config names the field and is permanent", func(t *testing.T) {
		err := p.Configure(ctx, json.RawMessage(`{"nope": 1}`))
		require.Error(t, err)
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), `unknown field "nope"`)
		assert.Contains(t, err.Error(), "plugin fakey: configure")
	})
	t.Run("config that is not an object is refused by the SDK", func(t *testing.T) {
		err := p.Configure(ctx, json.RawMessage(`[1]`))
		require.Error(t, err)
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), "config must be a JSON object")
	})

	configure(t, p, fakeconn.Config{RejectField: "bad", RetryField: "busy"})
	require.NoError(t, p.Check(ctx))
	assert.NotEmpty(t, logs.records("fake connector configured"), "the plugin's own log line reaches the hub's log")
	for _, r := range logs.records("fake connector configured") {
		assert.Equal(t, "fakey", r["plugin"])
	}

	t.Run("per-record results keep status, ids, codes and retry-after", func(t *testing.T) {
		resp, err := p.Write(ctx, connectors.WriteRequest{Object: "Thing", Operation: connectors.Upsert, ExternalIDField: "Key__c", Records: []connectors.Record{
			{Key: "a", Fields: map[string]any{"i": int64(1) << 53, "f": 1.5, "s": "x", "b": true, "nil": nil,
				"list": []any{int64(1), "two", 3.0}, "obj": map[string]any{"deep": map[string]any{"x": int64(7)}}}},
			{Key: "b", Fields: map[string]any{"bad": "x"}},
			{Key: "c", Fields: map[string]any{"busy": true}},
		}})
		require.NoError(t, err)
		require.Len(t, resp.Results, 3)
		assert.Equal(t, connectors.Result{Status: connectors.StatusApplied, TargetID: fakeconn.TargetID("a")}, resp.Results[0])
		assert.Equal(t, connectors.Result{Status: connectors.StatusPermanent, Code: "REJECTED", Message: "field bad is not allowed"}, resp.Results[1])
		assert.Equal(t, connectors.Result{Status: connectors.StatusRetryable, Code: "BUSY", Message: "try later", RetryAfter: 2 * time.Second}, resp.Results[2])
		assert.Equal(t, 1, resp.Calls)
	})
	t.Run("whole-batch errors keep their kind", func(t *testing.T) {
		_, err := p.Write(ctx, connectors.WriteRequest{Object: "Nope", Operation: connectors.Upsert, Records: []connectors.Record{{Key: "a"}}})
		require.Error(t, err)
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), `object "Nope"`)
	})
	t.Run("the host refuses what the contract forbids before the wire", func(t *testing.T) {
		_, err := p.Write(ctx, connectors.WriteRequest{Object: "Thing", Operation: "merge"})
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		_, err = p.Write(ctx, things(0, 201))
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), "larger than the plugin's max_batch 200")
		_, err = p.Write(ctx, connectors.WriteRequest{Object: "Thing", Operation: connectors.Upsert, Records: []connectors.Record{{Key: "z", Fields: map[string]any{"ch": make(chan int)}}}})
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), `record 0 (key "z"): field "ch"`)
	})
	t.Run("reads page with cursors and keep value types", func(t *testing.T) {
		_, err := p.Write(ctx, things(0, 5))
		require.NoError(t, err)
		page, err := p.Read(ctx, connectors.ReadRequest{Object: "Thing", Limit: 4})
		require.NoError(t, err)
		require.Len(t, page.Changes, 4)
		assert.True(t, page.More)
		assert.Equal(t, "a", page.Changes[0].Subject)
		assert.JSONEq(t, `{"i":9007199254740992,"f":1.5,"s":"x","b":true,"nil":null,"list":[1,"two",3],"obj":{"deep":{"x":7}}}`, string(page.Changes[0].Data))
		assert.Equal(t, time.Unix(1700000000, 0).UTC(), page.Changes[0].Time)
		next, err := p.Read(ctx, connectors.ReadRequest{Object: "Thing", Cursor: page.Cursor, Limit: 4})
		require.NoError(t, err)
		require.Len(t, next.Changes, 2)
		assert.False(t, next.More)
		assert.Equal(t, "k00004", next.Cursor)
	})
	t.Run("describe object", func(t *testing.T) {
		s, err := p.DescribeObject(ctx, "Thing")
		require.NoError(t, err)
		require.Len(t, s.Fields, 3)
		assert.Equal(t, connectors.FieldSchema{Name: "Tier__c", Type: "picklist", Createable: true, Updateable: true, Nillable: true, Picklist: []string{"gold", "silver"}}, s.Fields[2])
		_, err = p.DescribeObject(ctx, "Other")
		assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		assert.Contains(t, err.Error(), `no object "Other"`)
	})
	require.NoError(t, p.Close())
	_, err = p.Describe(ctx)
	assert.ErrorIs(t, err, host.ErrClosed)
}

func TestRefusesABinaryWhoseChecksumDiffers(t *testing.T) {
	cfg := fakeConfig(t, "fake")
	real := cfg.SHA256
	cfg.SHA256 = strings.Repeat("ab", 32)
	_, err := host.Start(context.Background(), cfg, nil)
	require.Error(t, err)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "refusing to start "+bins["fakeplugin"])
	assert.Contains(t, err.Error(), "its SHA-256 is "+real+" but the config pins "+cfg.SHA256)
}

func TestRefusesAnotherProtocolVersion(t *testing.T) {
	sum, err := host.FileSHA256(bins["wrongversion"])
	require.NoError(t, err)
	_, err = host.Start(context.Background(), host.Config{Name: "old", Path: bins["wrongversion"], SHA256: sum}, nil)
	require.Error(t, err)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "speaks another connector protocol version than this hub (version 1)")
	assert.Contains(t, err.Error(), "Plugin version: 2")
}

func TestRefusesABinaryThatIsNoPlugin(t *testing.T) {
	sum, err := host.FileSHA256("/bin/echo")
	if err != nil {
		t.Skip("no /bin/echo")
	}
	_, err = host.Start(context.Background(), host.Config{Name: "echo", Path: "/bin/echo", Args: []string{"hello"}, SHA256: sum}, nil)
	require.Error(t, err)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "is not a loyaltyhub connector plugin")
}

func TestConfigIsValidated(t *testing.T) {
	_, err := host.Start(context.Background(), host.Config{SHA256: "xyz", Env: []string{"NOEQUALS"}}, nil)
	require.Error(t, err)
	for _, want := range []string{"name is required", "path is required", `sha256 "xyz" is not 64 hex digits`, `env entry "NOEQUALS" is not KEY=value`} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestBatchInFlightWhenThePluginDiesIsRetried(t *testing.T) {
	ctx := context.Background()
	logger, logs := newLogger()
	p := start(t, fakeConfig(t, "fake"), logger)
	dir := t.TempDir()
	configure(t, p, fakeconn.Config{Dir: dir, WriteDelayMS: 400})
	pid := p.PID()
	require.NotZero(t, pid)

	done := make(chan struct{})
	var resp connectors.WriteResponse
	var werr error
	go func() {
		defer close(done)
		resp, werr = p.Write(ctx, things(0, 50))
	}()
	time.Sleep(150 * time.Millisecond) // the write sleeps 400ms in the plugin: it is in flight
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	<-done

	require.NoError(t, werr)
	require.Len(t, resp.Results, 50)
	for i, r := range resp.Results {
		assert.Equal(t, connectors.StatusApplied, r.Status, "record %d", i)
	}
	assert.Equal(t, 1, p.Restarts())
	assert.NotEqual(t, pid, p.PID())
	stored, err := fakeconn.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, stored, 50, "the restarted plugin got the config back (same dir)")
	require.Len(t, logs.records("plugin restarted"), 1)
	assert.Equal(t, "fake", logs.records("plugin restarted")[0]["plugin"])
	assert.NotEmpty(t, logs.records("plugin process exited"), "go-plugin's exit report reaches the log")
}

func TestHealthCheckRestartsAnIdleDeadPlugin(t *testing.T) {
	cfg := fakeConfig(t, "fake")
	cfg.HealthInterval = 50 * time.Millisecond
	logger, logs := newLogger()
	p := start(t, cfg, logger)
	configure(t, p, fakeconn.Config{})
	pid := p.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return p.Restarts() == 1 && p.PID() != 0 }, 5*time.Second, 20*time.Millisecond)
	assert.NotEqual(t, pid, p.PID())
	require.Len(t, logs.records("plugin restarted"), 1)
	assert.Contains(t, logs.records("plugin restarted")[0]["reason"], "health check")
	require.NoError(t, p.Check(context.Background()))
}

func TestAPluginThatKeepsCrashingIsRetriedOnceThenBackedOff(t *testing.T) {
	cfg := fakeConfig(t, "fake")
	cfg.RestartBackoff = 300 * time.Millisecond
	p := start(t, cfg, nil)
	configure(t, p, fakeconn.Config{CrashKey: "k00003"})

	t0 := time.Now()
	_, err := p.Write(context.Background(), things(0, 5))
	require.Error(t, err)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err), "the pipeline will retry the batch later: %v", err)
	assert.Equal(t, 1, p.Restarts(), "restarted once for the retry")

	// The next call finds the second corpse and restarts it after the backoff,
	// since the process before it never answered a call.
	_, err = p.Write(context.Background(), things(10, 5))
	require.NoError(t, err)
	assert.Equal(t, 2, p.Restarts())
	assert.GreaterOrEqual(t, time.Since(t0), 300*time.Millisecond)
}

func TestCallTimeoutAndCancellation(t *testing.T) {
	cfg := fakeConfig(t, "fake")
	cfg.CallTimeout = 200 * time.Millisecond
	p := start(t, cfg, nil)
	configure(t, p, fakeconn.Config{WriteDelayMS: 5000})

	t0 := time.Now()
	_, err := p.Write(context.Background(), things(0, 1))
	require.Error(t, err)
	assert.Less(t, time.Since(t0), 2*time.Second)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
	// Either the host's deadline fires first, or the plugin sees the
	// propagated deadline and gives up itself: both are transient.
	assert.Regexp(t, `no answer within the call timeout \(200ms\)|fake.Write: context deadline exceeded`, err.Error())

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = p.Write(ctx, things(0, 1))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Equal(t, connectors.Transient, connectors.KindOf(err))
	assert.Equal(t, 0, p.Restarts(), "a slow plugin is not a dead one")
	require.NoError(t, p.Check(context.Background()))
}

func TestBuiltinIsServedByTheSameBinary(t *testing.T) {
	out, err := execOutput(bins["selfhost"], "a", "bb")
	require.NoError(t, err, "%s", out)
	var got struct {
		PID     int                 `json:"pid"`
		HubPID  int                 `json:"hub_pid"`
		Results []connectors.Result `json:"results"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	assert.NotZero(t, got.PID)
	assert.NotEqual(t, got.HubPID, got.PID, "the connector runs in a child process")
	assert.Equal(t, []connectors.Result{
		{Status: connectors.StatusApplied, TargetID: fakeconn.TargetID("a")},
		{Status: connectors.StatusApplied, TargetID: fakeconn.TargetID("bb")},
	}, got.Results)
}
