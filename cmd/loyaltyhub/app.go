package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/loyaltyhub/loyaltyhub/config"
	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/mappings"
	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

// loadConfig loads and checks a config: the file itself, every connector
// block against its connector's schema, and every mapping compiled.
func loadConfig(ctx context.Context, path string, logger *slog.Logger) (*config.Config, *compiled, error) {
	cfg, err := config.LoadAll(path, config.WithRegistry(ctx))
	if err != nil {
		if cfg != nil {
			// Report the mappings' problems with the config's, in one go.
			_, mapErr := compileMappings(cfg)
			err = errors.Join(err, mapErr)
		}
		return nil, nil, err
	}
	maps, err := compileMappings(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, maps, nil
}

// compiled are a config's mappings, ready to run, and the cross-reference
// their lookups resolve through.
type compiled struct {
	mappings map[string]*mappings.Mapping // by sync name
	xref     *xrefResolver
}

// compileMappings compiles every sync's mapping and reports all problems.
func compileMappings(cfg *config.Config) (*compiled, error) {
	xref := &xrefResolver{}
	out := make(map[string]*mappings.Mapping, len(cfg.Syncs))
	var errs []error
	for _, s := range cfg.SyncList() {
		var spec *mappings.Spec
		var err error
		if s.Mapping == (config.MappingRef{}) {
			continue // a config with errors (LoadAll) has reported it
		}
		if s.Mapping.Inline() {
			spec, err = mappings.ParseNode(s.Mapping.SourceFile, s.Mapping.Node)
		} else {
			spec, err = mappings.ParseFile(s.Mapping.File)
		}
		if err == nil {
			out[s.Name], err = mappings.Compile(spec, mappings.WithResolver(xref))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sync %s: mapping: %w", s.Name, err))
		}
	}
	return &compiled{mappings: out, xref: xref}, errors.Join(errs...)
}

// app is the hub, wired: bus, store, connectors, syncs, HTTP server.
type app struct {
	ctx      context.Context // run's: background work (backfills) ends with it
	cfg      *config.Config
	logger   *slog.Logger
	bus      *bus.Bus
	store    store.Store
	hub      *pipeline.Hub
	server   *openapi.Server
	http     *http.Server
	listener net.Listener
	conns    []*host.Plugin
}

// startConnector starts a connector as a child process: a built-in one is
// this binary run as `loyaltyhub connector serve TYPE`, a vendor one is its
// plugin executable, checksum verified. Either way the hub talks to it
// through the one connector protocol, and a crash in it never takes the hub
// down: the host restarts it and retries the call in flight.
func startConnector(ctx context.Context, c *config.Connector, logger *slog.Logger) (*host.Plugin, error) {
	var hc host.Config
	if config.IsPluginType(c.Type) {
		hc = host.Config{Path: c.Plugin.Path, Args: c.Plugin.Args, Env: c.Plugin.Env,
			SHA256: c.Plugin.SHA256, CallTimeout: c.Plugin.CallTimeout}
	} else {
		if _, ok := connectors.Lookup(c.Type); !ok {
			return nil, fmt.Errorf("connector %s: unknown type %q; built-in connectors: %s", c.Name, c.Type, strings.Join(connectors.Names(), ", "))
		}
		var err error
		if hc, err = host.BuiltinConfig(c.Type); err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name, err)
		}
	}
	hc.Name = c.Name
	p, err := host.Start(ctx, hc, logger.With("component", "connector"))
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.Name, err)
	}
	return p, nil
}

func newApp(ctx context.Context, cfg *config.Config, maps *compiled, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	a.bus, err = bus.Open(ctx, bus.Config{
		URL:           cfg.Bus.URL,
		StoreDir:      filepath.Join(cfg.DataDir, "nats"),
		Stream:        cfg.Bus.Stream,
		SubjectPrefix: cfg.Bus.SubjectPrefix,
		AckWait:       cfg.Bus.AckWait,
		MaxAge:        cfg.Bus.MaxAge,
		MaxBytes:      cfg.Bus.MaxBytes,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("opening the bus: %w", err)
	}

	dsn := cfg.Store.DSN
	if cfg.Store.Driver == config.DriverSQLite && dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "state.db")
	}
	a.store, err = store.Open(ctx, cfg.Store.Driver, dsn, logger.With("component", "store"))
	if err != nil {
		return nil, fmt.Errorf("opening the state store: %w", err)
	}
	maps.xref.store = a.store

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := pipeline.NewMetrics(reg)

	writers := map[string]connectors.Writer{}
	maxBatch := map[string]int{}
	keys := map[string]connectors.KeyMatch{}
	breakers := map[string]*pipeline.Breaker{}
	readers := map[string]connectors.Reader{}
	for _, c := range cfg.ConnectorList() {
		conn, err := startConnector(ctx, c, logger)
		if err != nil {
			return nil, err
		}
		a.conns = append(a.conns, conn)
		if err := conn.Configure(ctx, c.Config); err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name, err)
		}
		d, err := conn.Describe(ctx)
		if err != nil {
			return nil, fmt.Errorf("connector %s: describe: %w", c.Name, err)
		}
		switch d.Keys {
		case connectors.KeysExact, connectors.KeysCaseInsensitive:
		default:
			return nil, fmt.Errorf("connector %s: describe says its target compares keys %q; the hub knows %q (exact) and %q", c.Name, d.Keys, connectors.KeysExact, connectors.KeysCaseInsensitive)
		}
		writers[c.Name], maxBatch[c.Name], keys[c.Name] = conn, d.MaxBatch, d.Keys
		readers[c.Name] = conn
		breakers[c.Name] = pipeline.NewBreaker(c.Name, pipeline.BreakerConfig{Failures: c.Breaker.Failures, OpenFor: c.Breaker.OpenFor},
			metrics, logger.With("component", "breaker"))
	}
	maps.xref.keys = keys
	for _, s := range cfg.SyncList() {
		if err := foldStoredKeys(ctx, a.store, s, keys[s.To], logger); err != nil {
			return nil, err
		}
	}

	// Each sync runs on the replica holding its lease (see pipeline.Leased).
	lease := pipeline.LeaseConfig{Leaser: a.store, Holder: replicaID(cfg), TTL: cfg.Replica.LeaseTTL}
	leased := pipeline.Leased(func(consumer string, inflight int) (message.Subscriber, error) {
		return a.bus.Subscriber(consumer, inflight)
	}, lease, logger.With("component", "lease"))
	a.hub, err = pipeline.NewHub(pipeline.HubConfig{ProgressInterval: cfg.Progress.Interval},
		leased, a.bus.Pending, logger.With("component", "pipeline"))
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.SyncList() {
		size := s.Batch.Size
		if mb := maxBatch[s.To]; mb > 0 && size > mb {
			size = mb
		}
		sync, err := pipeline.NewSync(pipeline.SyncConfig{
			Name: s.Name, Topic: s.From, System: s.To, Object: s.Object, Mode: s.Mode, Removals: s.Removals, ExternalIDField: s.ExternalID,
			BatchSize: size, BatchWindow: s.Batch.Window, Inflight: s.Inflight,
			MaxAttempts: s.Retry.MaxAttempts, InitialInterval: s.Retry.InitialInterval,
			MaxInterval: s.Retry.MaxInterval, Multiplier: s.Retry.Multiplier, RateLimit: s.RateLimit,
			Keys: keys[s.To], Breaker: breakers[s.To],
		}, mapperFor(maps.mappings[s.Name]), writers[s.To], a.store, metrics, logger)
		if err != nil {
			return nil, err
		}
		if err := a.hub.AddSync(sync); err != nil {
			return nil, err
		}
	}

	for _, c := range cfg.ConnectorList() {
		if c.Read == nil {
			continue
		}
		for _, obj := range c.Read.Objects {
			a.hub.AddPoller(pipeline.NewPoller(pipeline.PollConfig{Connector: c.Name, Object: obj,
				Interval: c.Read.Interval, PageSize: c.Read.PageSize, Lease: &lease}, readers[c.Name], a.store, a.bus.Publisher(),
				logger.With("component", "poller")))
		}
	}

	sources := map[string]openapi.SourceConfig{}
	for _, src := range cfg.SourceList() {
		sc := openapi.SourceConfig{Tolerance: src.Tolerance, Insecure: src.Insecure}
		for i, sec := range src.Secrets {
			key, err := config.SecretKey(sec)
			if err != nil {
				return nil, fmt.Errorf("sources.%s.secrets[%d]: %w", src.Name, i, err)
			}
			sc.Keys = append(sc.Keys, key)
		}
		sources[src.Name] = sc
	}
	a.server, err = openapi.NewServer(openapi.ServerConfig{
		Sources:        sources,
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		MaxBatchEvents: cfg.HTTP.MaxBatchEvents,
		Metrics:        reg,
		Registerer:     reg,
		Ready:          func() error { return nil },
		Admin:          adminAPI{a},
		AdminToken:     cfg.HTTP.AdminToken.Value(),
		Deliveries:     a.store,
		// The bus refuses a message over its max payload on every try:
		// ingress refuses such an event at once instead.
		MaxEventBytes:        a.bus.MaxMessageBytes(),
		MaxConcurrentIngress: cfg.HTTP.MaxConcurrentIngress,
	}, a.bus.Publisher(), logger.With("component", "http"))
	if err != nil {
		return nil, err
	}
	a.listener, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.http = &http.Server{
		Handler:           a.server.Handler(),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelDebug),
	}
	return a, nil
}

// mapperFor adapts a compiled mapping to the pipeline: a record error is
// permanent (dead letter), an unresolved lookup or an unreadable
// cross-reference is retried.
func mapperFor(m *mappings.Mapping) pipeline.Mapper {
	return func(ctx context.Context, ev *event.Event) (map[string]any, error) {
		out, err := m.Apply(ctx, mappings.Input{ID: ev.ID, Type: ev.Type, Source: ev.Source, Subject: ev.Subject, Time: ev.Time, Data: ev.Data})
		var rec *mappings.RecordError
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, mappings.ErrFiltered):
			return nil, pipeline.ErrFiltered
		case errors.As(err, &rec) && !errors.Is(err, mappings.ErrUnresolved):
			return nil, err
		default:
			return nil, fmt.Errorf("%w: %w", pipeline.ErrRetryLater, err)
		}
	}
}

// xrefResolver resolves mapping lookups through the state store's
// cross-reference. Mappings compile before the store opens (validate never
// opens it), so the store is set once the app has it.
type xrefResolver struct {
	store store.Store
	// keys is how each connector's target compares keys: its syncs write
	// the cross-reference under folded keys, so lookups fold the same way.
	keys map[string]connectors.KeyMatch
}

func (r *xrefResolver) Resolve(ctx context.Context, system, object, key string) (string, bool, error) {
	if r.store == nil {
		return "", false, errors.New("the cross-reference is not open")
	}
	return r.store.LookupXref(ctx, system, object, r.keys[system].Fold(key))
}

// builtinKeys says how a connector's target compares keys without starting
// it: a built-in connector describes itself without I/O; a vendor plugin is
// not known until it runs, and is taken as exact.
func builtinKeys(ctx context.Context, c *config.Connector) connectors.KeyMatch {
	spec, ok := connectors.Lookup(c.Type)
	if !ok {
		return connectors.KeysExact
	}
	d, err := spec.New(nil).Describe(ctx)
	if err != nil {
		return connectors.KeysExact
	}
	return d.Keys
}

// foldStoredKeys rewrites, once per sync, the guard rows and cross-reference
// entries written before the hub folded keys for a case-insensitive target
// (a marker in the store's cursors says it is done).
func foldStoredKeys(ctx context.Context, st store.Store, s *config.Sync, keys connectors.KeyMatch, logger *slog.Logger) error {
	if keys != connectors.KeysCaseInsensitive {
		return nil
	}
	marker := "keys-folded:" + s.Name
	if _, done, err := st.GetCursor(ctx, marker); err != nil || done {
		return err
	}
	n, err := st.FoldKeys(ctx, s.Name, s.To, s.Object, keys.Fold)
	if err != nil {
		return fmt.Errorf("sync %s: folding stored keys: %w", s.Name, err)
	}
	if n > 0 {
		logger.Info("stored keys folded: the target compares keys case-insensitively", "sync", s.Name, "rows", n)
	}
	return st.SetCursor(ctx, marker, string(keys))
}

// run serves until ctx is done, then shuts down in order: stop intake,
// drain in-flight batches, close the bus and the store.
func (a *app) run(ctx context.Context) error {
	a.ctx = ctx
	errc := make(chan error, 2)
	go func() { errc <- a.hub.Run(ctx) }()
	select {
	case <-a.hub.Running():
	case err := <-errc:
		return fmt.Errorf("pipeline: %w", err)
	}
	go func() {
		if err := a.http.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	a.logger.Info("loyaltyhub running", "http", "http://"+a.listener.Addr().String(), "syncs", len(a.cfg.Syncs),
		"data_dir", a.cfg.DataDir, "bus", busLabel(a.cfg), "store", a.cfg.Store.Driver, "replica", replicaID(a.cfg))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.logger.Info("shutting down: stopping intake")
	a.server.SetAccepting(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := a.http.Shutdown(shutdownCtx); err != nil {
		a.logger.Warn("http shutdown", "err", err)
	}
	a.logger.Info("shutting down: draining in-flight batches")
	if err := a.hub.Close(); err != nil {
		a.logger.Warn("pipeline close", "err", err)
	}
	a.close()
	a.logger.Info("stopped")
	return runErr
}

func (a *app) close() {
	for _, c := range a.conns {
		_ = c.Close()
	}
	if a.bus != nil {
		if err := a.bus.Close(); err != nil {
			a.logger.Warn("bus close", "err", err)
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.logger.Warn("store close", "err", err)
		}
	}
}

func busLabel(cfg *config.Config) string {
	if cfg.Bus.URL == "" {
		return "embedded NATS JetStream"
	}
	return "NATS JetStream (external)"
}

// adminAPI serves the HTTP admin API from the app's hub and store.
type adminAPI struct{ a *app }

func (x adminAPI) Syncs(ctx context.Context) ([]openapi.SyncStatus, error) {
	st, err := x.a.hub.Status(ctx, x.a.store)
	if err != nil {
		return nil, err
	}
	out := make([]openapi.SyncStatus, len(st))
	for i, s := range st {
		out[i] = openapi.SyncStatus{Name: s.Name, Topic: s.Topic, Connector: s.System, Object: s.Object,
			Applied: s.Counts.Applied, Skipped: s.Counts.Skipped, Dead: s.Counts.Dead, Breaker: s.Breaker}
		if s.Backlog >= 0 {
			out[i].Backlog = &s.Backlog
		}
		if s.LeaseFound {
			out[i].RunningOn, out[i].LeaseExpiresAt = s.Lease.Holder, &s.Lease.ExpiresAt
		}
	}
	return out, nil
}

// StartBackfill starts a backfill of the sync, on this replica only if it
// holds the sync's lease: one replica writes a sync at a time.
func (x adminAPI) StartBackfill(ctx context.Context, name string) (pipeline.BackfillStatus, error) {
	s, ok := x.a.hub.Sync(name)
	if !ok {
		return pipeline.BackfillStatus{}, fmt.Errorf("no sync %q: %w", name, openapi.ErrNotFound)
	}
	holds := func(ctx context.Context) error {
		me := replicaID(x.a.cfg)
		lease, found, err := x.a.store.LeaseOf(ctx, pipeline.LeaseName(pipeline.ConsumerName(name)))
		if err != nil {
			return fmt.Errorf("reading the sync's lease: %w", err)
		}
		if !found || lease.Holder != me || !lease.ExpiresAt.After(time.Now()) {
			return fmt.Errorf("sync %s does not run on this replica (%s) but on %q: ask that one: %w", name, me, lease.Holder, openapi.ErrConflict)
		}
		return nil
	}
	if err := holds(ctx); err != nil {
		return pipeline.BackfillStatus{}, err
	}
	if err := s.StartBackfill(x.a.ctx, x.a.bus, holds); errors.Is(err, pipeline.ErrBackfillRunning) {
		return pipeline.BackfillStatus{}, fmt.Errorf("sync %s: %w: %w", name, err, openapi.ErrConflict)
	} else if err != nil {
		return pipeline.BackfillStatus{}, err
	}
	st, _ := s.BackfillStatus()
	return st, nil
}

// BackfillStatus is the sync's current or last backfill on this replica.
func (x adminAPI) BackfillStatus(_ context.Context, name string) (pipeline.BackfillStatus, error) {
	s, ok := x.a.hub.Sync(name)
	if !ok {
		return pipeline.BackfillStatus{}, fmt.Errorf("no sync %q: %w", name, openapi.ErrNotFound)
	}
	st, ok := s.BackfillStatus()
	if !ok {
		return pipeline.BackfillStatus{}, fmt.Errorf("sync %s has had no backfill on this replica: %w", name, openapi.ErrNotFound)
	}
	return st, nil
}

// LatestEvent finds the newest event on the sync's topic that holds the
// record key: the entity id, or SEGMENT:MEMBER for a segment sync (the
// newest change of that segment that adds or removes that member).
func (x adminAPI) LatestEvent(ctx context.Context, syncName, key string) (json.RawMessage, string, error) {
	s, ok := x.a.cfg.Syncs[syncName]
	if !ok {
		return nil, "", fmt.Errorf("no sync %q; the syncs: %s: %w", syncName, strings.Join(syncNames(x.a.cfg), ", "), openapi.ErrNotFound)
	}
	return latestEventFor(ctx, x.a.bus, s, key)
}

// latestEventFor is LatestEvent for sync s.
func latestEventFor(ctx context.Context, b *bus.Bus, s *config.Sync, key string) (json.RawMessage, string, error) {
	subject := key
	if s.Entity == event.EntitySegment {
		if segment, _, ok := strings.Cut(key, ":"); ok {
			subject = segment
		}
	}
	holdsKey := func(m *message.Message) bool {
		ev, err := event.FromMessage(m)
		if err != nil {
			return false
		}
		for _, r := range eventRecords(ev, s) {
			if r.key == key {
				return true
			}
		}
		return false
	}
	m, err := b.Latest(ctx, s.From, event.MetaSubject, subject, holdsKey)
	if errors.Is(err, bus.ErrNoMessage) {
		return nil, s.From, fmt.Errorf("no event for key %q on topic %s (sync %s): the bus holds none, or no longer (bus.max_age, bus.max_bytes)%s: %w",
			key, s.From, s.Name, segmentKeyHint(s, key), openapi.ErrNotFound)
	}
	if err != nil {
		return nil, s.From, err
	}
	return json.RawMessage(m.Payload), s.From, nil
}

func segmentKeyHint(s *config.Sync, key string) string {
	if s.Entity == event.EntitySegment && !strings.Contains(key, ":") {
		return "; a segment sync's keys are SEGMENT:MEMBER"
	}
	return ""
}

// replicaID is replica.id, or the host name and a hash of the data
// directory: stable across restarts of one replica, distinct for two
// replicas on one host (they cannot share a data directory).
func replicaID(cfg *config.Config) string {
	if cfg.Replica.ID != "" {
		return cfg.Replica.ID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	sum := sha256.Sum256([]byte(cfg.DataDir))
	return host + "-" + hex.EncodeToString(sum[:4])
}
