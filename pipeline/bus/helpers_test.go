package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

const natsURLEnv = "LOYALTYHUB_TEST_NATS_URL"

// testConfig has short timings so that redeliveries happen within a test.
func testConfig() bus.Config {
	return bus.Config{
		AckWait:        time.Second,
		NakDelay:       100 * time.Millisecond,
		MaxNakDelay:    400 * time.Millisecond,
		CloseTimeout:   2 * time.Second,
		PublishTimeout: 5 * time.Second,
	}
}

// eachBackend runs f against the embedded server (always) and against the
// server at LOYALTYHUB_TEST_NATS_URL (when set), each with its own store or
// its own stream and subject prefix, deleted afterwards.
func eachBackend(t *testing.T, f func(t *testing.T, cfg bus.Config)) {
	t.Run("embedded", func(t *testing.T) {
		cfg := testConfig()
		cfg.StoreDir = t.TempDir()
		f(t, cfg)
	})
	t.Run("external", func(t *testing.T) {
		cfg, ok := externalConfig(t)
		if !ok {
			t.Skip("set " + natsURLEnv + " (e.g. nats://127.0.0.1:4222, a server with JetStream) to run against an external NATS server")
		}
		f(t, cfg)
	})
}

func externalConfig(t *testing.T) (bus.Config, bool) {
	url := os.Getenv(natsURLEnv)
	if url == "" {
		return bus.Config{}, false
	}
	id := randomID()
	cfg := testConfig()
	cfg.URL = url
	cfg.Stream = "LHTEST_" + id
	cfg.SubjectPrefix = "lhtest_" + id
	t.Cleanup(func() { deleteStream(t, url, cfg.Stream) })
	return cfg, true
}

func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("cleanup: connecting to %s: %v", url, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Errorf("cleanup: deleting stream %s: %v", stream, err)
	}
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// open opens a bus that is closed when the test ends (Close is idempotent,
// so tests may close it earlier).
func open(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// subscribe subscribes a new Subscriber and closes it when the test ends.
func subscribe(t *testing.T, b *bus.Bus, consumer string, inflight int, topic string) (*bus.Subscriber, <-chan *message.Message) {
	t.Helper()
	s, err := b.Subscriber(consumer, inflight)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ch, err := s.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return s, ch
}

func msgs(prefix string, n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		m := message.NewMessage(fmt.Sprintf("%s-%d", prefix, i), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		m.Metadata.Set("n", fmt.Sprint(i))
		out[i] = m
	}
	return out
}

func memberEvent(id string, version int64) *event.Event {
	return &event.Event{
		ID:              id,
		Source:          "https://ledger.example.com/programs/gold",
		SpecVersion:     "1.0",
		Type:            event.TypeMemberUpserted,
		Subject:         "M-" + id,
		Time:            time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC),
		DataContentType: "application/json",
		Data:            []byte(fmt.Sprintf(`{"id":"M-%s","version":%d,"tier":"gold"}`, id, version)),
		Origin:          "ledger",
		Version:         version,
	}
}

func recv(t *testing.T, ch <-chan *message.Message, within time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "subscription channel closed")
		return m
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return nil
	}
}

func recvN(t *testing.T, ch <-chan *message.Message, n int, within time.Duration) []*message.Message {
	t.Helper()
	deadline := time.After(within)
	out := make([]*message.Message, 0, n)
	for len(out) < n {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription channel closed after %d of %d messages", len(out), n)
			out = append(out, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages within %s", len(out), n, within)
		}
	}
	return out
}

// recvAckN receives n messages, acking each as it arrives.
func recvAckN(t *testing.T, ch <-chan *message.Message, n int, within time.Duration) []*message.Message {
	t.Helper()
	deadline := time.After(within)
	out := make([]*message.Message, 0, n)
	for len(out) < n {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription channel closed after %d of %d messages", len(out), n)
			m.Ack()
			out = append(out, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages within %s", len(out), n, within)
		}
	}
	return out
}

func noRecv(t *testing.T, ch <-chan *message.Message, during time.Duration) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %s (delivery %s)", m.UUID, m.Metadata.Get(bus.MetaDelivered))
	case <-time.After(during):
	}
}

func waitPending(t *testing.T, b *bus.Bus, consumer string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got int
	var err error
	for time.Now().Before(deadline) {
		got, err = b.Pending(context.Background(), consumer)
		if err == nil && got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("consumer %s: pending %d (err %v), want %d within %s", consumer, got, err, want, within)
}

func uuids(ms []*message.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UUID
	}
	return out
}

func ackAll(ms []*message.Message) {
	for _, m := range ms {
		m.Ack()
	}
}
