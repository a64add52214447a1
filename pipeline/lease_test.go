package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// flakyLeaser is a store whose lease calls can be made to fail, as when a
// replica loses its connection to the database.
type flakyLeaser struct {
	store.Store
	down atomic.Bool
}

func (f *flakyLeaser) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error) {
	if f.down.Load() {
		return store.Lease{}, false, errors.New("connection refused")
	}
	return f.Store.AcquireLease(ctx, name, holder, ttl)
}

// replica is one hub replica's leased subscriber on the shared consumer.
type replica struct {
	sub message.Subscriber
	ch  <-chan *message.Message
}

func startReplica(t *testing.T, b *bus.Bus, l pipeline.Leaser, holder string) *replica {
	t.Helper()
	f := pipeline.Leased(func(consumer string, inflight int) (message.Subscriber, error) {
		return b.Subscriber(consumer, inflight)
	}, pipeline.LeaseConfig{Leaser: l, Holder: holder, TTL: 600 * time.Millisecond}, nil)
	sub, err := f("sync_members", 50)
	require.NoError(t, err)
	ch, err := sub.Subscribe(context.Background(), "ledger.member")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return &replica{sub: sub, ch: ch}
}

// receive acks n messages from r and fails if another replica gets any.
func receive(t *testing.T, r *replica, n int, others ...*replica) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for got := 0; got < n; {
		select {
		case m := <-r.ch:
			m.Ack()
			got++
		case <-deadline:
			t.Fatalf("received %d of %d messages", got, n)
		}
		for _, o := range others {
			select {
			case m := <-o.ch:
				t.Fatalf("a standby replica received %s", m.UUID)
			default:
			}
		}
	}
}

func publishN(t *testing.T, b *bus.Bus, prefix string, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, b.Publisher().Publish("ledger.member", message.NewMessage(fmt.Sprintf("%s-%d", prefix, i), []byte(`{}`))))
	}
}

func TestLeasedSyncRunsOnOneReplicaAtATime(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats"), AckWait: 2 * time.Second}, nil)
	require.NoError(t, err)
	defer b.Close()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "state.db"), nil)
	require.NoError(t, err)
	defer st.Close()
	lb := &flakyLeaser{Store: st}

	a := startReplica(t, b, st, "replica-a")
	publishN(t, b, "first", 1)
	receive(t, a, 1) // replica-a holds the lease
	bb := startReplica(t, b, lb, "replica-b")
	publishN(t, b, "a", 40)
	receive(t, a, 40, bb)
	time.Sleep(time.Second) // replica-b keeps standing by across several renewals
	publishN(t, b, "a2", 10)
	receive(t, a, 10, bb)

	// replica-a stops (a shutdown gives the lease up): replica-b takes over
	// without waiting for the lease to expire.
	start := time.Now()
	require.NoError(t, a.sub.Close())
	publishN(t, b, "b", 30)
	receive(t, bb, 30)
	require.Less(t, time.Since(start), 2*time.Second)

	// replica-b loses the database: it cannot renew, stops consuming once
	// its lease may have expired, and a restarted replica-a takes over.
	lb.down.Store(true)
	time.Sleep(900 * time.Millisecond)
	a2 := startReplica(t, b, st, "replica-a")
	publishN(t, b, "a3", 20)
	receive(t, a2, 20, bb)
}

// countingReader is a connector with nothing new to read; it counts reads.
type countingReader struct{ reads atomic.Int64 }

func (r *countingReader) Read(_ context.Context, req connectors.ReadRequest) (connectors.ReadResponse, error) {
	r.reads.Add(1)
	return connectors.ReadResponse{Cursor: req.Cursor}, nil
}

func TestLeasedPollerReadsOnOneReplica(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "state.db"), nil)
	require.NoError(t, err)
	defer st.Close()
	b, err := bus.Open(context.Background(), bus.Config{StoreDir: filepath.Join(dir, "nats")}, nil)
	require.NoError(t, err)
	defer b.Close()

	start := func(holder string, r *countingReader) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.NewPoller(pipeline.PollConfig{Connector: "vendor", Object: "Voucher", Interval: 20 * time.Millisecond,
			Lease: &pipeline.LeaseConfig{Leaser: st, Holder: holder, TTL: 600 * time.Millisecond}}, r, st, b.Publisher(), nil)
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		return func() { cancel(); <-done }
	}
	var ra, rb countingReader
	stopA := start("replica-a", &ra)
	require.Eventually(t, func() bool { return ra.reads.Load() > 0 }, 5*time.Second, 10*time.Millisecond)
	stopB := start("replica-b", &rb)
	defer stopB()
	time.Sleep(time.Second)
	require.Greater(t, ra.reads.Load(), int64(10), "replica-a polls")
	require.Zero(t, rb.reads.Load(), "replica-b stands by")

	stopA() // gives the lease up
	require.Eventually(t, func() bool { return rb.reads.Load() > 0 }, 2*time.Second, 10*time.Millisecond, "replica-b takes over")
}

// TestLeasedSubscriberSurvivesAFailingFactory: while the inner subscriber
// cannot be made (a bad inflight, the bus down), the leased one logs and
// tries again; it does not panic on the typed nil the factory returns.
func TestLeasedSubscriberSurvivesAFailingFactory(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "state.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var tries atomic.Int32
	f := pipeline.Leased(func(consumer string, inflight int) (message.Subscriber, error) {
		tries.Add(1)
		var sub *bus.Subscriber // what bus.Subscriber returns with its error
		return sub, errors.New("inflight out of range")
	}, pipeline.LeaseConfig{Leaser: st, Holder: "a", TTL: 300 * time.Millisecond}, nil)
	sub, err := f("sync_members", 50)
	require.NoError(t, err)
	_, err = sub.Subscribe(context.Background(), "ledger.member")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tries.Load() >= 3 }, 5*time.Second, 10*time.Millisecond, "it keeps trying")
	require.NoError(t, sub.Close())
}
