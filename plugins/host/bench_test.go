package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
)

// BenchmarkWrite measures the cost of the process boundary: the same
// in-memory connector called in-process and through a plugin process
// (gRPC over mTLS, with conversions both ways), for batches of 1, 50, 200.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{1, 50, 200} {
		req := connectors.WriteRequest{Object: "Thing", Operation: connectors.Upsert, ExternalIDField: "Key__c"}
		for i := range size {
			req.Records = append(req.Records, connectors.Record{Key: fmt.Sprintf("k%05d", i), Fields: map[string]any{
				"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com", "Points__c": int64(1200 + i), "Tier__c": "gold", "OptIn__c": true,
			}})
		}
		b.Run(fmt.Sprintf("in-process/batch=%d", size), func(b *testing.B) {
			c := fakeconn.New(nil)
			if err := c.Configure(ctx, json.RawMessage(`{}`)); err != nil {
				b.Fatal(err)
			}
			benchWrite(b, c, req)
		})
		b.Run(fmt.Sprintf("plugin/batch=%d", size), func(b *testing.B) {
			sum, err := host.FileSHA256(bins["fakeplugin"])
			if err != nil {
				b.Fatal(err)
			}
			p, err := host.Start(ctx, host.Config{Name: "fake", Path: bins["fakeplugin"], SHA256: sum}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if err := p.Configure(ctx, json.RawMessage(`{}`)); err != nil {
				b.Fatal(err)
			}
			benchWrite(b, p, req)
		})
	}
}

func benchWrite(b *testing.B, w connectors.Writer, req connectors.WriteRequest) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := w.Write(ctx, req)
		if err != nil || len(resp.Results) != len(req.Records) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(req.Records))/b.Elapsed().Seconds(), "records/s")
}
