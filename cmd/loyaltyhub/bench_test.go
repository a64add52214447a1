package main

import (
	"context"
	"io"
	"testing"
	"time"

	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
)

// BenchmarkEndToEnd10000 measures the whole flow on embedded defaults: 10,000
// member events (1,000 members, 10 % duplicates, 10 % out of order) posted
// over HTTP in batches of 100, through embedded JetStream, the version guard
// in SQLite and the Salesforce connector, into the Salesforce emulator, until
// the emulator holds every member's newest version. It reports events/s
// (from the first request to convergence) and records written per API call.
// Run with -benchtime 1x: one iteration is one 10,000-event run.
func BenchmarkEndToEnd10000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		o := startOrg(b)
		h := newHub(b, o, hubSetup{})
		ctx, cancel := context.WithCancel(context.Background())
		logger := newLogger(io.Discard, logConfig("error"))
		cfg, maps, err := loadConfig(ctx, h.cfgPath, logger)
		if err != nil {
			b.Fatal(err)
		}
		a, err := newApp(ctx, cfg, maps, logger)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.run(ctx) }()
		<-a.hub.Running()
		plan := e2ePlan()
		b.StartTimer()

		start := time.Now()
		sender := &ledgeremu.Sender{URL: "http://" + a.listener.Addr().String() + "/v1/events/ledger", Secret: e2eKey, BatchSize: 100}
		if err := sender.Send(ctx, plan.Deliveries, nil); err != nil {
			b.Fatal(err)
		}
		ingest := time.Since(start)
		for {
			if ok, _ := converged(o, plan); ok {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("no convergence within 5 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()

		st := o.Stats()
		calls := st.Calls["collections.upsert"] + st.Calls["collections.create"] + st.Calls["collections.update"]
		writes := 0
		o.mu.Lock()
		for _, h := range o.history {
			writes += len(h)
		}
		o.mu.Unlock()
		b.ReportMetric(float64(len(plan.Deliveries))/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(len(plan.Deliveries))/ingest.Seconds(), "ingest-events/s")
		b.ReportMetric(float64(writes)/float64(calls), "records/call")
		b.ReportMetric(float64(calls), "api-calls")
		cancel()
		<-done
	}
}
