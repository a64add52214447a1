package host_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
)

// TestKillTwentyTimesDuringTenThousandRecords kills the plugin process 20
// times while 10,000 records flow through it in batches of 50, the way the
// pipeline drives a sink: a batch whose call fails as a whole is sent again.
// Every record must end applied exactly once by effect (one stored record per
// key with its own data), the host must survive, and each restart be logged.
func TestKillTwentyTimesDuringTenThousandRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a plugin 20 times")
	}
	const total, batch, kills = 10000, 50, 20
	ctx := context.Background()
	logger, logs := newLogger()
	cfg := fakeConfig(t, "fake")
	cfg.HealthInterval = 100 * time.Millisecond
	p := start(t, cfg, logger)
	dir := t.TempDir()
	configure(t, p, fakeconn.Config{Dir: dir, WriteDelayMS: 2})

	batches := total / batch
	killAt := map[int]bool{} // one kill in each slot of 10 batches, never at a slot's edge
	for slot := range kills {
		killAt[slot*batches/kills+2+rand.IntN(batches/kills-4)] = true
	}
	var killed atomic.Int32
	var batchErrors, resent int
	for b := range batches {
		req := things(b*batch, batch)
		if killAt[b] {
			pid := p.PID()
			go func() {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // usually mid-call
				if pid != 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed.Add(1)
				}
			}()
		}
		for attempt := 1; ; attempt++ {
			resp, err := p.Write(ctx, req)
			if err != nil {
				require.Equal(t, connectors.Transient, connectors.KindOf(err), "batch %d: %v", b, err)
				require.Less(t, attempt, 10, "batch %d keeps failing: %v", b, err)
				batchErrors++
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if attempt > 1 {
				resent++
			}
			require.Len(t, resp.Results, batch)
			for i, r := range resp.Results {
				require.Equal(t, connectors.StatusApplied, r.Status, "batch %d record %d", b, i)
				require.Equal(t, fakeconn.TargetID(req.Records[i].Key), r.TargetID)
			}
			break
		}
	}
	require.Eventually(t, func() bool { return int(killed.Load()) == kills && p.Restarts() == kills }, 5*time.Second, 10*time.Millisecond,
		"killed %d, restarted %d", killed.Load(), p.Restarts())

	stored, err := fakeconn.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, stored, total, "one stored record per key: nothing lost, nothing doubled")
	rewrites := 0
	for i, s := range stored {
		require.Equal(t, fmt.Sprintf("k%05d", i), s.Key)
		require.Equal(t, float64(i), s.Fields["n"], "key %s holds its own data", s.Key)
		rewrites += s.Writes - 1
	}
	restartLogs := logs.records("plugin restarted")
	assert.Len(t, restartLogs, kills, "each restart is logged")
	for _, r := range restartLogs {
		assert.Equal(t, "fake", r["plugin"])
	}
	require.NoError(t, p.Check(ctx))
	t.Logf("%d records, %d kills, %d restarts, %d batch calls failed and were re-sent by the caller (%d batches), %d records written more than once (same effect)",
		total, killed.Load(), p.Restarts(), batchErrors, resent, rewrites)
}
