// Command broken is a deliberately broken connector plugin: the conformance
// kit must fail it, with a clear reason per broken behaviour. It accepts any
// config, has no config schema, gives a new target id on every write,
// applies records it should refuse, never moves its read cursor, and keeps
// working on cancelled calls while holding its lock.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/loyaltyhub/loyaltyhub/plugins/sdk"
)

type broken struct {
	mu sync.Mutex
	n  int
}

func (b *broken) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "broken", Version: "0.0.1", MaxBatch: 20, Objects: []string{"things"}}, nil
}

func (b *broken) Configure(context.Context, json.RawMessage) error { return nil } // accepts anything

func (b *broken) Check(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return nil
}

func (b *broken) Close() error { return nil }

func (b *broken) Write(_ context.Context, req sdk.WriteRequest) (sdk.WriteResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(req.Records) > 5 {
		time.Sleep(4 * time.Second) // ignores the context, holding the lock
	}
	out := sdk.WriteResponse{Calls: 1}
	for range req.Records {
		b.n++
		out.Results = append(out.Results, sdk.Result{Status: sdk.StatusApplied, TargetID: fmt.Sprintf("id-%d-%d", os.Getpid(), b.n)})
	}
	return out, nil
}

func (b *broken) Read(_ context.Context, req sdk.ReadRequest) (sdk.ReadResponse, error) {
	return sdk.ReadResponse{
		Changes: []sdk.Change{{ID: "c1", Type: "test.thing.upserted", Subject: "t1", Version: 1, Data: json.RawMessage(`{"a":1}`)}},
		Cursor:  req.Cursor, // never moves
		More:    true,
	}, nil
}

func main() { sdk.Serve(&broken{}) }
