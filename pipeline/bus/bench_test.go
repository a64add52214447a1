package bus_test

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
)

// BenchmarkPublish measures stored messages per second on the embedded
// server, one Publish call per batch.
func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			bb, err := bus.Open(b.Context(), bus.Config{StoreDir: b.TempDir()}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close()
			pub := bb.Publisher()
			payload := []byte(`{"id":"M-1","version":1,"tier":"gold","points":1200,"email":"a@example.com"}`)
			batch := make([]*message.Message, size)
			n := 0
			for b.Loop() {
				for i := range batch {
					m := message.NewMessage(fmt.Sprint(n), payload)
					m.Metadata.Set("ce_type", "loyalty.member.upserted")
					m.Metadata.Set("lh_version", "1")
					batch[i] = m
					n++
				}
				if err := pub.Publish("ledger.member", batch...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkConsume measures messages per second through one subscriber whose
// handler acks at once, on the embedded server.
func BenchmarkConsume(b *testing.B) {
	for _, inflight := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			bb, err := bus.Open(b.Context(), bus.Config{StoreDir: b.TempDir()}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close()
			batch := make([]*message.Message, 100)
			for i := 0; i < b.N; i += len(batch) {
				for j := range batch {
					batch[j] = message.NewMessage(fmt.Sprint(i+j), []byte(`{"id":"M-1","version":1}`))
				}
				if err := bb.Publisher().Publish("ledger.member", batch...); err != nil {
					b.Fatal(err)
				}
			}
			s, err := bb.Subscriber("bench", inflight)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			ch, err := s.Subscribe(b.Context(), "ledger.member")
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				m := <-ch
				m.Ack()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
