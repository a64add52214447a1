package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.Config
		want []string
	}{
		{"embedded without store dir", bus.Config{}, []string{"StoreDir is required"}},
		{"dotted stream", bus.Config{StoreDir: "x", Stream: "A.B"}, []string{`Stream "A.B"`, "no dots"}},
		{"wildcard prefix", bus.Config{StoreDir: "x", SubjectPrefix: "hub.*"}, []string{`SubjectPrefix "hub.*"`, `token "*"`}},
		{"empty token prefix", bus.Config{StoreDir: "x", SubjectPrefix: "hub..x"}, []string{"empty token"}},
		{"replicas embedded", bus.Config{StoreDir: "x", Replicas: 3}, []string{"Replicas 3 needs a JetStream cluster"}},
		{"dedup longer than age", bus.Config{URL: "nats://h:4222", MaxAge: time.Minute, DedupWindow: time.Hour}, []string{"DedupWindow 1h0m0s"}},
		{"nak delays", bus.Config{StoreDir: "x", NakDelay: time.Minute, MaxNakDelay: time.Second}, []string{"MaxNakDelay 1s must be at least NakDelay 1m0s"}},
		{"all at once", bus.Config{Stream: "a b", AckWait: time.Millisecond, MaxBytes: -1},
			[]string{"StoreDir is required", `Stream "a b"`, "AckWait 1ms", "MaxBytes -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bus.Open(context.Background(), tt.cfg, nil)
			require.Error(t, err)
			assert.Nil(t, b)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateJudgesZeroFieldsByDefaults(t *testing.T) {
	assert.NoError(t, bus.Config{StoreDir: "data"}.Validate())
	assert.NoError(t, bus.Config{URL: "nats://h:4222", Replicas: 3}.Validate())
	assert.ErrorContains(t, bus.Config{URL: "nats://h:4222", Replicas: 7}.Validate(), "Replicas 7 must be between 1 and 5")
}

func TestOpenUnreachableURL(t *testing.T) {
	_, err := bus.Open(context.Background(), bus.Config{URL: "nats://user:secret@127.0.0.1:1"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connecting to NATS at nats://redacted@127.0.0.1:1")
	assert.NotContains(t, err.Error(), "secret")
}

func TestRejectsBadNames(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})

	_, err := b.Subscriber("sync.a", 1)
	assert.ErrorContains(t, err, `consumer name "sync.a" is not valid`)
	_, err = b.Subscriber("sync-a", 0)
	assert.ErrorContains(t, err, "inflight 0 must be between 1 and 100000")
	_, err = b.Subscriber("sync-a", 100001)
	assert.ErrorContains(t, err, "inflight 100001")

	err = b.Publisher().Publish("ledger.*", msgs("x", 1)...)
	assert.ErrorContains(t, err, `topic "ledger.*"`)
	err = b.Publisher().Publish("ledger..member", msgs("x", 1)...)
	assert.ErrorContains(t, err, "empty token")

	s, err := b.Subscriber("sync-a", 1)
	require.NoError(t, err)
	_, err = s.Subscribe(context.Background(), "ledger.>.x")
	assert.ErrorContains(t, err, `token ">"`)
}

func TestRoundTripKeepsUUIDAndMetadata(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		b := open(t, cfg)
		_, ch := subscribe(t, b, "crm", 4, "ledger.member")

		ev := memberEvent("evt-1", 7)
		m, err := ev.ToMessage()
		require.NoError(t, err)
		m.Metadata.Set("empty", "")
		m.Metadata.Set("MixedCase_Key", "Value with spaces: and colons")
		require.NoError(t, b.Publisher().Publish(ev.Topic(), m))

		got := recv(t, ch, 5*time.Second)
		assert.Equal(t, "evt-1", got.UUID)
		assert.Equal(t, string(m.Payload), string(got.Payload))
		for k, v := range m.Metadata {
			assert.Equal(t, v, got.Metadata.Get(k), "metadata %q", k)
			_, present := got.Metadata[k]
			assert.True(t, present, "metadata %q present", k)
		}
		assert.Equal(t, "1", got.Metadata.Get(bus.MetaDelivered))
		assert.Equal(t, "1", got.Metadata.Get(bus.MetaSequence))
		assert.Len(t, got.Metadata, len(m.Metadata)+2, "no other metadata: %v", got.Metadata)

		back, err := event.FromMessage(got)
		require.NoError(t, err)
		assert.Equal(t, ev.ID, back.ID)
		assert.Equal(t, ev.Origin, back.Origin)
		assert.Equal(t, ev.Version, back.Version)
		assert.True(t, ev.Time.Equal(back.Time))
		assert.JSONEq(t, string(ev.Data), string(back.Data))

		got.Ack()
		waitPending(t, b, "crm", 0, 5*time.Second)

		// A message on another topic does not reach this consumer.
		require.NoError(t, b.Publisher().Publish("ledger.transaction", msgs("tx", 1)...))
		noRecv(t, ch, 300*time.Millisecond)
	})
}

func TestPublishedMessagesSurviveReopen(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		b := open(t, cfg)
		pub := b.Publisher()
		all := msgs("m", 500)
		for i := 0; i < len(all); i += 100 {
			require.NoError(t, pub.Publish("ledger.member", all[i:i+100]...))
		}
		require.NoError(t, b.Close())
		assert.ErrorIs(t, pub.Publish("ledger.member", msgs("late", 1)...), bus.ErrClosed)

		b = open(t, cfg)
		_, ch := subscribe(t, b, "audit", 100, "ledger.member")
		got := recvAckN(t, ch, 500, 10*time.Second)
		assert.ElementsMatch(t, uuids(all), uuids(got))
		waitPending(t, b, "audit", 0, 5*time.Second)
		noRecv(t, ch, 200*time.Millisecond)
	})
}

func TestDurableConsumerSurvivesRestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		cfg.CloseTimeout = 200 * time.Millisecond
		b := open(t, cfg)
		all := msgs("d", 10)
		require.NoError(t, b.Publisher().Publish("ledger.member", all...))
		_, ch := subscribe(t, b, "crm", 10, "ledger.member")
		got := recvN(t, ch, 10, 5*time.Second)
		byUUID := map[string]*message.Message{}
		for _, m := range got {
			byUUID[m.UUID] = m
		}
		var unacked []string
		for i, m := range all {
			if i%3 == 0 {
				unacked = append(unacked, m.UUID)
				continue
			}
			byUUID[m.UUID].Ack()
		}
		waitPending(t, b, "crm", len(unacked), 5*time.Second)
		require.NoError(t, b.Close()) // the unacked ones are still held by "handlers"

		b = open(t, cfg)
		n, err := b.Pending(context.Background(), "crm")
		require.NoError(t, err)
		assert.Equal(t, len(unacked), n)
		_, ch = subscribe(t, b, "crm", 10, "ledger.member")
		again := recvN(t, ch, len(unacked), 5*time.Second)
		assert.ElementsMatch(t, unacked, uuids(again))
		for _, m := range again {
			assert.Equal(t, "2", m.Metadata.Get(bus.MetaDelivered), m.UUID)
		}
		ackAll(again)
		waitPending(t, b, "crm", 0, 5*time.Second)
		noRecv(t, ch, 1500*time.Millisecond) // longer than AckWait
	})
}

func TestInflightLimitsUnackedDeliveries(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		const inflight = 4
		b := open(t, cfg)
		require.NoError(t, b.Publisher().Publish("ledger.member", msgs("f", 3*inflight)...))
		_, ch := subscribe(t, b, "mc", inflight, "ledger.member")

		held := recvN(t, ch, inflight, 5*time.Second)
		noRecv(t, ch, 500*time.Millisecond)
		n, err := b.Pending(context.Background(), "mc")
		require.NoError(t, err)
		assert.Equal(t, 3*inflight, n)

		held[0].Ack()
		held = append(held[1:], recv(t, ch, 5*time.Second))
		noRecv(t, ch, 300*time.Millisecond)

		// Held past AckWait (1s): the in-progress signal keeps them ours.
		time.Sleep(1500 * time.Millisecond)
		noRecv(t, ch, 100*time.Millisecond)
		for _, m := range held {
			assert.Equal(t, "1", m.Metadata.Get(bus.MetaDelivered))
		}

		ackAll(held)
		recvAckN(t, ch, 2*inflight-1, 5*time.Second)
		waitPending(t, b, "mc", 0, 5*time.Second)
	})
}

func TestNackRedeliversAfterDelay(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		cfg.NakDelay = 300 * time.Millisecond
		cfg.MaxNakDelay = 600 * time.Millisecond
		b := open(t, cfg)
		require.NoError(t, b.Publisher().Publish("cdp.segment", msgs("n", 1)...))
		_, ch := subscribe(t, b, "seg", 2, "cdp.segment")

		first := recv(t, ch, 5*time.Second)
		assert.Equal(t, "1", first.Metadata.Get(bus.MetaDelivered))
		nackedAt := time.Now()
		first.Nack()
		select {
		case <-first.Context().Done():
		case <-time.After(time.Second):
			t.Fatal("message context not cancelled after Nack")
		}

		second := recv(t, ch, 5*time.Second)
		assert.GreaterOrEqual(t, time.Since(nackedAt), 250*time.Millisecond, "first redelivery waits NakDelay")
		assert.Equal(t, first.UUID, second.UUID)
		assert.Equal(t, "2", second.Metadata.Get(bus.MetaDelivered))
		nackedAt = time.Now()
		second.Nack()
		time.Sleep(100 * time.Millisecond) // the nack is stored, the redelivery waits
		n, err := b.Pending(context.Background(), "seg")
		require.NoError(t, err)
		assert.Equal(t, 1, n, "a nacked message waiting for redelivery is still pending")

		third := recv(t, ch, 5*time.Second)
		assert.GreaterOrEqual(t, time.Since(nackedAt), 550*time.Millisecond, "second redelivery waits twice NakDelay")
		assert.Equal(t, "3", third.Metadata.Get(bus.MetaDelivered))
		n, err = b.Pending(context.Background(), "seg")
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		third.Ack()
		waitPending(t, b, "seg", 0, 5*time.Second)
		noRecv(t, ch, 800*time.Millisecond)
	})
}

func TestCompetingSubscribersShareWork(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		b := open(t, cfg)
		// On an external server the second subscriber has its own connection,
		// like a second hub replica; the embedded server serves one process.
		b2 := b
		if cfg.URL != "" {
			b2 = open(t, cfg)
		}
		const total = 300
		require.NoError(t, b.Publisher().Publish("ledger.member", msgs("c", total)...))

		var mu sync.Mutex
		seen := map[string]int{}
		perSub := [2]int{}
		var wg sync.WaitGroup
		for i, bb := range []*bus.Bus{b, b2} {
			_, ch := subscribe(t, bb, "shared", 4, "ledger.member")
			wg.Go(func() {
				for {
					select {
					case m := <-ch:
						time.Sleep(time.Millisecond) // a handler takes time
						mu.Lock()
						seen[m.UUID]++
						perSub[i]++
						mu.Unlock()
						m.Ack()
					case <-time.After(time.Second):
						return
					}
				}
			})
		}
		wg.Wait()
		assert.Len(t, seen, total)
		for id, n := range seen {
			assert.Equal(t, 1, n, "message %s delivered %d times", id, n)
		}
		assert.Positive(t, perSub[0], "first subscriber got none")
		assert.Positive(t, perSub[1], "second subscriber got none")
		t.Logf("split %d/%d", perSub[0], perSub[1])
		waitPending(t, b, "shared", 0, 5*time.Second)
	})
}

func TestConsumerKeepsItsTopic(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})
	subscribe(t, b, "crm", 1, "ledger.member")
	s, err := b.Subscriber("crm", 1)
	require.NoError(t, err)
	_, err = s.Subscribe(context.Background(), "ledger.voucher")
	assert.ErrorContains(t, err, `consumer "crm" already reads subject "loyaltyhub.ledger.member"`)
	// The same topic again is another worker on the same consumer.
	_, err = s.Subscribe(context.Background(), "ledger.member")
	assert.NoError(t, err)
}

func TestPendingUnknownConsumer(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})
	_, err := b.Pending(context.Background(), "nobody")
	assert.ErrorIs(t, err, bus.ErrUnknownConsumer)
	assert.ErrorContains(t, err, `consumer "nobody" in stream "LOYALTYHUB"`)
}

func TestWildcardTopic(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})
	_, ch := subscribe(t, b, "all-ledger", 8, "ledger.>")
	require.NoError(t, b.Publisher().Publish("ledger.member", msgs("m", 2)...))
	require.NoError(t, b.Publisher().Publish("ledger.voucher", msgs("v", 2)...))
	require.NoError(t, b.Publisher().Publish("cdp.segment", msgs("s", 2)...))
	got := recvN(t, ch, 4, 5*time.Second)
	assert.ElementsMatch(t, []string{"m-0", "m-1", "v-0", "v-1"}, uuids(got))
	ackAll(got)
	noRecv(t, ch, 300*time.Millisecond)
}

func TestDedupOnlyWhenAskedFor(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		b := open(t, cfg)
		_, ch := subscribe(t, b, "dedup", 8, "ledger.member")
		pub := b.Publisher()

		// Same UUID twice without Nats-Msg-Id: both stored (the version guard
		// downstream is what makes the second harmless).
		require.NoError(t, pub.Publish("ledger.member", message.NewMessage("same", []byte("1"))))
		require.NoError(t, pub.Publish("ledger.member", message.NewMessage("same", []byte("2"))))
		got := recvN(t, ch, 2, 5*time.Second)
		ackAll(got)

		// With Nats-Msg-Id, the server drops the resend within the window.
		for i := range 2 {
			m := message.NewMessage(fmt.Sprintf("resend-%d", i), []byte("x"))
			m.Metadata.Set("Nats-Msg-Id", "ledger.member/evt-9")
			require.NoError(t, pub.Publish("ledger.member", m))
		}
		one := recv(t, ch, 5*time.Second)
		assert.Equal(t, "resend-0", one.UUID)
		assert.Empty(t, one.Metadata.Get("Nats-Msg-Id"), "dedup id is not metadata for subscribers")
		one.Ack()
		noRecv(t, ch, 300*time.Millisecond)
		waitPending(t, b, "dedup", 0, 5*time.Second)
	})
}

func TestMetadataArrivesExactly(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})
	_, ch := subscribe(t, b, "c", 8, "ledger.member")
	values := map[string]string{
		"ce_subject": "M-1\r\nX-Injected: yes",
		"padded":     "  spaces around\t",
		"tab_inside": "a\tb",
		"lookalike":  "=?utf-8?b?aGk=?=",
		"unicode":    "Zoë — 積分",
		"empty":      "",
	}
	m := message.NewMessage("exact", []byte("{}"))
	for k, v := range values {
		m.Metadata.Set(k, v)
	}
	require.NoError(t, b.Publisher().Publish("ledger.member", m))
	got := recv(t, ch, 5*time.Second)
	for k, v := range values {
		assert.Equal(t, v, got.Metadata.Get(k), "metadata %q", k)
	}
	assert.Empty(t, got.Metadata.Get("X-Injected"))
	got.Ack()
}

func TestPublishRejectsBadMetadataKeysBeforeSending(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir()})
	_, ch := subscribe(t, b, "c", 8, "ledger.member")
	good := message.NewMessage("good", []byte("{}"))
	for _, key := range []string{"a key", "a:b", "", "x\ny", "_watermill_message_uuid"} {
		bad := message.NewMessage("bad", []byte("{}"))
		bad.Metadata.Set(key, "v")
		err := b.Publisher().Publish("ledger.member", good, bad)
		assert.ErrorContains(t, err, fmt.Sprintf("message bad: metadata key %q", key))
	}
	require.NoError(t, b.Publisher().Publish("ledger.member", message.NewMessage("after", []byte("{}"))))
	m := recv(t, ch, 5*time.Second)
	assert.Equal(t, "after", m.UUID, "nothing of the rejected calls was stored")
	m.Ack()
	noRecv(t, ch, 200*time.Millisecond)
}

func TestSubscriberCloseWaitsForHeldMessages(t *testing.T) {
	cfg := testConfig()
	cfg.StoreDir = t.TempDir()
	b := open(t, cfg)
	require.NoError(t, b.Publisher().Publish("ledger.member", msgs("h", 5)...))
	s, ch := subscribe(t, b, "crm", 2, "ledger.member")
	held := recvN(t, ch, 2, 5*time.Second)

	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while handlers still hold messages")
	case <-time.After(200 * time.Millisecond):
	}
	ackAll(held)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return after the held messages were acked")
	}
	_, ok := <-ch
	assert.False(t, ok, "channel closed after Close")
	// The two acks were stored; nothing else was taken.
	waitPending(t, b, "crm", 3, 2*time.Second)
	_, err := s.Subscribe(context.Background(), "ledger.member")
	assert.ErrorIs(t, err, bus.ErrClosed)
}

func TestContextCancelClosesSubscription(t *testing.T) {
	b := open(t, bus.Config{StoreDir: t.TempDir(), CloseTimeout: 300 * time.Millisecond})
	s, err := b.Subscriber("crm", 2)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Subscribe(ctx, "ledger.member")
	require.NoError(t, err)
	require.NoError(t, b.Publisher().Publish("ledger.member", msgs("x", 1)...))
	m := recv(t, ch, 5*time.Second)
	cancel()
	select {
	case <-m.Context().Done():
	case <-time.After(time.Second):
		t.Fatal("message context not cancelled with the subscription's")
	}
	select {
	case _, ok := <-ch:
		assert.False(t, ok)
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after the context was cancelled")
	}
	require.NoError(t, s.Close())
	err = b.Close()
	assert.NoError(t, err)
	assert.NoError(t, b.Close(), "second Close")
	_, err = b.Subscriber("x", 1)
	assert.True(t, errors.Is(err, bus.ErrClosed))
}

func TestStoreDirIsExclusive(t *testing.T) {
	cfg := bus.Config{StoreDir: t.TempDir(), SyncAlways: true}
	b := open(t, cfg)
	_, err := bus.Open(context.Background(), cfg, nil)
	assert.ErrorContains(t, err, "is in use by another embedded bus")
	require.NoError(t, b.Close())
	open(t, cfg) // free again after Close
}
