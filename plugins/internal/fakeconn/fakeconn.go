// Package fakeconn is a small connector for the plugin tests and benchmarks:
// it upserts "Thing" records into memory or into a directory (so that its
// state outlives a killed process), reads them back in pages, and can be told
// to be slow, to refuse or defer records, or to crash on a key.
package fakeconn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Config is the fake connector's config block.
type Config struct {
	// Dir keeps records as files when set; in memory otherwise.
	Dir string `json:"dir"`
	// WriteDelayMS sleeps this long in every Write, honouring cancellation.
	WriteDelayMS int `json:"write_delay_ms"`
	// RejectField: a record carrying this field is refused (permanent).
	RejectField string `json:"reject_field"`
	// RetryField: a record carrying this field is deferred (retryable, 2s).
	RetryField string `json:"retry_field"`
	// CrashKey: the process exits with status 3 when it writes this key.
	CrashKey string `json:"crash_key"`
}

// Stored is one record as the fake keeps it.
type Stored struct {
	Key      string         `json:"key"`
	TargetID string         `json:"target_id"`
	Fields   map[string]any `json:"fields"`
	Writes   int            `json:"writes"`
}

// Connector is the fake connector.
type Connector struct {
	log *slog.Logger

	mu  sync.Mutex
	cfg Config
	mem map[string]*Stored
}

// New returns an unconfigured fake connector.
func New(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{log: logger, mem: map[string]*Stored{}}
}

// Describe describes the fake.
func (c *Connector) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{
		Name: "fake", Version: "1.0.0", Summary: "test connector", MaxBatch: 200, Objects: []string{"Thing"}, Writes: []string{"Thing"}, Reads: []string{"Thing"}, Entities: []string{"member"},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"dir":{"type":"string"},"write_delay_ms":{"type":"integer"}}}`),
	}, nil
}

// Configure takes the config, refusing unknown fields.
func (c *Connector) Configure(_ context.Context, raw json.RawMessage) error {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return connectors.E("fake.Configure", connectors.Permanent, fmt.Errorf("config: %w (valid fields: dir, write_delay_ms, reject_field, retry_field, crash_key)", err))
	}
	if cfg.WriteDelayMS < 0 {
		return connectors.E("fake.Configure", connectors.Permanent, errors.New("config: write_delay_ms must be >= 0"))
	}
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	c.log.Info("fake connector configured", "dir", cfg.Dir, "pid", os.Getpid())
	return nil
}

// Check checks that the directory exists.
func (c *Connector) Check(context.Context) error {
	c.mu.Lock()
	dir := c.cfg.Dir
	c.mu.Unlock()
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return connectors.E("fake.Check", connectors.Transient, err)
	}
	return nil
}

// ClosedMarker is the file Close leaves in the configured Dir, so a test can
// tell that a plugin process closed its connector before it exited.
func ClosedMarker(dir string, pid int) string {
	return filepath.Join(dir, fmt.Sprintf("closed-%d", pid))
}

// Close logs, and leaves ClosedMarker in Dir when one is configured.
func (c *Connector) Close() error {
	c.mu.Lock()
	dir := c.cfg.Dir
	c.mu.Unlock()
	c.log.Info("fake connector closed", "pid", os.Getpid())
	if dir == "" {
		return nil
	}
	return os.WriteFile(ClosedMarker(dir, os.Getpid()), nil, 0o600)
}

// TargetID is the fake's stable id for a key.
func TargetID(key string) string {
	s := sha256.Sum256([]byte(key))
	return "T-" + hex.EncodeToString(s[:6])
}

// Write upserts the records.
func (c *Connector) Write(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfg
	if req.Object != "Thing" {
		return connectors.WriteResponse{}, connectors.E("fake.Write", connectors.Permanent, fmt.Errorf("object %q: the fake writes only Thing", req.Object))
	}
	if cfg.WriteDelayMS > 0 {
		t := time.NewTimer(time.Duration(cfg.WriteDelayMS) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return connectors.WriteResponse{}, connectors.E("fake.Write", connectors.Transient, ctx.Err())
		}
	}
	out := connectors.WriteResponse{Results: make([]connectors.Result, len(req.Records)), Calls: 1}
	for i, r := range req.Records {
		if cfg.CrashKey != "" && r.Key == cfg.CrashKey {
			c.log.Error("crashing on purpose", "key", r.Key)
			os.Exit(3)
		}
		if _, ok := r.Fields[cfg.RejectField]; ok && cfg.RejectField != "" {
			out.Results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "REJECTED", Message: "field " + cfg.RejectField + " is not allowed"}
			continue
		}
		if _, ok := r.Fields[cfg.RetryField]; ok && cfg.RetryField != "" {
			out.Results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "BUSY", Message: "try later", RetryAfter: 2 * time.Second}
			continue
		}
		if r.Key == "" {
			out.Results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "MISSING_KEY", Message: "key is empty"}
			continue
		}
		s, err := c.load(r.Key)
		if err != nil {
			return connectors.WriteResponse{}, connectors.E("fake.Write", connectors.Transient, err)
		}
		if s == nil {
			s = &Stored{Key: r.Key, TargetID: TargetID(r.Key)}
		}
		s.Fields = r.Fields
		s.Writes++
		if err := c.store(s); err != nil {
			return connectors.WriteResponse{}, connectors.E("fake.Write", connectors.Transient, err)
		}
		out.Results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: s.TargetID}
	}
	return out, nil
}

func (c *Connector) path(key string) string {
	return filepath.Join(c.cfg.Dir, hex.EncodeToString([]byte(key))+".json")
}

func (c *Connector) load(key string) (*Stored, error) {
	if c.cfg.Dir == "" {
		if s, ok := c.mem[key]; ok {
			cp := *s
			return &cp, nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(c.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Stored
	return &s, json.Unmarshal(b, &s)
}

func (c *Connector) store(s *Stored) error {
	if c.cfg.Dir == "" {
		c.mem[s.Key] = s
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := c.path(s.Key) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.path(s.Key))
}

// All returns every stored record, sorted by key.
func (c *Connector) All() ([]Stored, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all()
}

func (c *Connector) all() ([]Stored, error) {
	var out []Stored
	if c.cfg.Dir == "" {
		for _, s := range c.mem {
			out = append(out, *s)
		}
	} else {
		var err error
		out, err = ReadDir(c.cfg.Dir)
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ReadDir loads the records a fake connector stored in dir.
func ReadDir(dir string) ([]Stored, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var s Stored
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Read pages through the stored records in key order; the cursor is the
// last key returned.
func (c *Connector) Read(ctx context.Context, req connectors.ReadRequest) (connectors.ReadResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Object != "Thing" {
		return connectors.ReadResponse{}, connectors.E("fake.Read", connectors.Permanent, fmt.Errorf("object %q: the fake reads only Thing", req.Object))
	}
	all, err := c.all()
	if err != nil {
		return connectors.ReadResponse{}, connectors.E("fake.Read", connectors.Transient, err)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	out := connectors.ReadResponse{Cursor: req.Cursor}
	for _, s := range all {
		if s.Key <= req.Cursor {
			continue
		}
		if len(out.Changes) == limit {
			out.More = true
			break
		}
		data, _ := json.Marshal(s.Fields)
		out.Changes = append(out.Changes, connectors.Change{
			ID: fmt.Sprintf("%s@%d", s.Key, s.Writes), Type: "test.thing.upserted", Subject: s.Key,
			Version: int64(s.Writes), Time: time.Unix(1700000000, 0).UTC(), Data: data,
		})
		out.Cursor = s.Key
	}
	return out, nil
}

// DescribeObject describes Thing.
func (c *Connector) DescribeObject(_ context.Context, object string) (connectors.ObjectSchema, error) {
	if object != "Thing" {
		return connectors.ObjectSchema{}, connectors.E("fake.DescribeObject", connectors.Permanent, fmt.Errorf("no object %q; objects: Thing", object))
	}
	return connectors.ObjectSchema{Name: "Thing", Fields: []connectors.FieldSchema{
		{Name: "Id", Type: "id"},
		{Name: "Key__c", Type: "string", Length: 80, Createable: true, ExternalID: true, Unique: true},
		{Name: "Tier__c", Type: "picklist", Createable: true, Updateable: true, Nillable: true, Picklist: []string{"gold", "silver"}},
	}}, nil
}

var (
	_ connectors.Writer          = (*Connector)(nil)
	_ connectors.Reader          = (*Connector)(nil)
	_ connectors.SchemaDescriber = (*Connector)(nil)
)
