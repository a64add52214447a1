package bus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
)

func TestLatestFindsTheNewestMatchingMessage(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		b := open(t, cfg)
		ctx := context.Background()
		pub := b.Publisher()

		// 5,000 messages over 50 keys on one topic, interleaved with another
		// topic's messages under the same keys: the lookup crosses several
		// windows and must ignore the other topic.
		const n, keys = 5000, 50
		var batch []*message.Message
		var other []*message.Message
		for i := range n {
			m := message.NewMessage(fmt.Sprintf("m-%d", i), fmt.Appendf(nil, `{"n":%d}`, i))
			m.Metadata.Set("ce_subject", fmt.Sprintf("K-%d", i%keys))
			batch = append(batch, m)
			o := message.NewMessage(fmt.Sprintf("o-%d", i), fmt.Appendf(nil, `{"n":%d}`, -i))
			o.Metadata.Set("ce_subject", fmt.Sprintf("K-%d", i%keys))
			other = append(other, o)
			if len(batch) == 500 {
				require.NoError(t, pub.Publish("ledger.member", batch...))
				require.NoError(t, pub.Publish("ledger.voucher", other...))
				batch, other = nil, nil
			}
		}
		// A key whose only message is the very first one, far behind.
		first := message.NewMessage("first", []byte(`{"n":"first"}`))
		first.Metadata.Set("ce_subject", "K-lonely\nwith a line break")
		require.NoError(t, pub.Publish("ledger.member", first))
		for i := range 3000 {
			m := message.NewMessage(fmt.Sprintf("late-%d", i), []byte(`{}`))
			m.Metadata.Set("ce_subject", "K-late")
			batch = append(batch, m)
		}
		require.NoError(t, pub.Publish("ledger.member", batch...))

		m, err := b.Latest(ctx, "ledger.member", "ce_subject", "K-7", nil)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("m-%d", n-keys+7), m.UUID, "the newest message of K-7")
		require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, n-keys+7), string(m.Payload))
		require.Equal(t, "K-7", m.Metadata.Get("ce_subject"))

		m, err = b.Latest(ctx, "ledger.member", "ce_subject", "K-lonely\nwith a line break", nil)
		require.NoError(t, err)
		require.Equal(t, "first", m.UUID, "an encoded header value matches once decoded")

		// accept skips newer messages it does not want.
		m, err = b.Latest(ctx, "ledger.member", "ce_subject", "K-3", func(m *message.Message) bool {
			return m.UUID == "m-3" || m.UUID == "m-53"
		})
		require.NoError(t, err)
		require.Equal(t, "m-53", m.UUID)

		_, err = b.Latest(ctx, "ledger.member", "ce_subject", "K-nobody", nil)
		require.ErrorIs(t, err, bus.ErrNoMessage)
		_, err = b.Latest(ctx, "ledger.transaction", "ce_subject", "K-7", nil)
		require.ErrorIs(t, err, bus.ErrNoMessage)
		_, err = b.Latest(ctx, "ledger.*", "ce_subject", "K-7", nil)
		require.Error(t, err, "a wildcard is not a topic")
	})
}

func TestLatestOnAnEmptyStream(t *testing.T) {
	cfg := testConfig()
	cfg.StoreDir = t.TempDir()
	b := open(t, cfg)
	_, err := b.Latest(context.Background(), "ledger.member", "ce_subject", "K", nil)
	require.ErrorIs(t, err, bus.ErrNoMessage)
}
