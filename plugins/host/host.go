// Package host runs connector plugins as child processes and presents each
// one to the hub as a connectors.Connector (and Writer, Reader,
// SchemaDescriber). It starts the child with go-plugin over gRPC with
// automatic mutual TLS, checks the handshake and the protocol version,
// verifies the binary's pinned SHA-256 before every start, bounds every call
// with a timeout, health-checks the child and restarts it with backoff when
// it dies, replaying its configuration and retrying the call that was in
// flight. The child's logs go to the hub's log with plugin=NAME.
//
// A child never outlives its hub: on Linux the kernel sends it SIGTERM when
// the hub dies (childAttrs), and everywhere its SDK watches its parent. It
// keeps its socket in a directory of the hub's (sockets.go), which the hub
// removes as the child or the hub itself goes away.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/sockdir"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

// ErrClosed is returned by calls on a closed Plugin.
var ErrClosed = errors.New("plugin is closed")

// Plugin is one running connector plugin. It is safe for concurrent use.
type Plugin struct {
	cfg  Config
	sum  []byte
	log  *slog.Logger
	name string // "plugin NAME", the op prefix of errors

	sem chan struct{} // one start or restart at a time

	mu         sync.Mutex
	cur        *instance
	config     []byte // last config that Configure accepted, replayed on restart
	configured bool
	desc       connectors.Description
	caps       wire.Capabilities
	closed     bool

	inARow   int // restarts in a row of processes that never served a call
	restarts atomic.Int64

	stopHealth context.CancelFunc
	healthDone chan struct{}

	sockets        *sockdir.Hub // the hub's socket directory; nil: go-plugin's default
	releaseSockets func()
}

// instance is one child process.
type instance struct {
	client  *plugin.Client
	conn    *wire.Client
	grpc    *grpc.ClientConn
	pid     int
	served  atomic.Bool // answered at least one call of the hub
	dir     string      // the child's socket directory ("" when none)
	release func()      // lets go of the thread the child was forked from
}

// kill ends the process (asking it to stop first; go-plugin's Kill returns
// once it is reaped), then lets go of the thread it was forked from and
// removes its socket directory, which a process killed with SIGKILL, or
// refused at start, leaves behind.
func (i *instance) kill() {
	i.client.Kill()
	i.release()
	if i.dir != "" {
		_ = os.RemoveAll(i.dir)
	}
}

// startClient starts the child (go-plugin's Start forks it and completes
// the handshake). Where the parent-death signal is per thread (Linux, see
// childAttrs), it runs on a goroutine locked to its OS thread, which stays
// locked, so no other goroutine can end that thread, until release is
// called, once the child is reaped. A locked goroutine parked on a channel
// costs one idle thread per running plugin.
func startClient(client *plugin.Client) (release func(), err error) {
	if !forkOnOwnThread {
		_, err := client.Start()
		return func() {}, err
	}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		_, err := client.Start()
		started <- err
		if err == nil {
			<-done
		}
		runtime.UnlockOSThread()
	}()
	err = <-started
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, err
}

// Start starts the plugin described by cfg, checks that it speaks this
// protocol version and describes itself, and returns it running. The plugin
// still needs Configure before Check, Write or Read. A nil logger discards.
//
// Start refuses, with an error of kind Permanent, a binary whose SHA-256
// differs from cfg.SHA256, a binary that is not a loyaltyhub connector
// plugin, and one that speaks another protocol version.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Plugin, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, connectors.E("plugin "+cfg.Name, connectors.Permanent, fmt.Errorf("invalid plugin config: %w", err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sum, _ := hex.DecodeString(strings.ToLower(cfg.SHA256))
	p := &Plugin{
		cfg:  cfg,
		sum:  sum,
		log:  logger.With("plugin", cfg.Name),
		name: "plugin " + cfg.Name,
		sem:  make(chan struct{}, 1),
	}
	p.sockets, p.releaseSockets = acquireSockets(logger)
	inst, err := p.startInstance(ctx)
	if err != nil {
		p.releaseSockets()
		return nil, err
	}
	p.cur = inst
	d, caps, err := p.describe(ctx, inst)
	if err != nil {
		inst.kill()
		p.releaseSockets()
		return nil, err
	}
	p.desc, p.caps = d, caps
	p.log.Info("plugin started", "path", cfg.Path, "pid", inst.pid, "connector", d.Name, "version", d.Version,
		"protocol", wire.ProtocolVersion, "sdk", caps.SDK)
	if cfg.HealthInterval > 0 {
		hctx, cancel := context.WithCancel(context.Background())
		p.stopHealth, p.healthDone = cancel, make(chan struct{})
		go p.healthLoop(hctx)
	}
	return p, nil
}

func (p *Plugin) describe(ctx context.Context, inst *instance) (connectors.Description, wire.Capabilities, error) {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	d, caps, err := inst.conn.Describe(cctx)
	if err != nil {
		return d, caps, p.classify("describe", err, ctx)
	}
	return d, caps, nil
}

// startInstance verifies the binary, starts it, completes the handshake and
// replays the last accepted config.
func (p *Plugin) startInstance(ctx context.Context) (*instance, error) {
	op := p.name
	got, err := FileSHA256(p.cfg.Path)
	if err != nil {
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("cannot read the plugin executable: %w", err))
	}
	if got != hex.EncodeToString(p.sum) {
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"refusing to start %s: its SHA-256 is %s but the config pins %s; if this binary is trusted, set sha256: %s",
			p.cfg.Path, got, hex.EncodeToString(p.sum), got))
	}
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = p.cfg.environ()
	cmd.SysProcAttr = childAttrs()
	var dir string
	if p.sockets != nil {
		d, err := p.sockets.NewChild()
		if err != nil {
			p.log.Warn("the plugin keeps its socket in the temp directory", "error", err)
		} else {
			dir = d
			cmd.Env = append(cmd.Env, p.sockets.Env(d)...)
		}
	}
	hl := newHclogAdapter(p.log)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          plugin.PluginSet{wire.PluginName: &wire.GRPCPlugin{}},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: p.sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     p.cfg.StartTimeout,
		Logger:           hl,
		SyncStdout:       &lineWriter{l: p.log, level: slog.LevelInfo, msg: "plugin stdout"},
		SyncStderr:       &lineWriter{l: p.log, level: slog.LevelWarn, msg: "plugin stderr"},
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes))},
	})
	inst := &instance{client: client, dir: dir}
	inst.release, err = startClient(client)
	if err != nil {
		inst.kill()
		return nil, p.startError(err)
	}
	rpc, err := client.Client()
	if err != nil {
		inst.kill()
		return nil, p.startError(err)
	}
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		inst.kill()
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("plugin %s does not serve the connector service: %w", p.cfg.Path, err))
	}
	conn := raw.(*wire.Client)
	conn.Name = p.name
	inst.conn = conn
	if gc, ok := rpc.(*plugin.GRPCClient); ok {
		inst.grpc = gc.Conn
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	p.mu.Lock()
	config, configured := p.config, p.configured
	p.mu.Unlock()
	if configured {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
		err := conn.Configure(cctx, config)
		cancel()
		if err != nil {
			inst.kill()
			return nil, p.classify("configure (replayed after restart)", err, ctx)
		}
	}
	return inst, nil
}

// startError explains why go-plugin could not start the child. go-plugin
// reports a version mismatch and a foreign binary only in its message text,
// so this is the one place that reads it.
func (p *Plugin) startError(err error) error {
	op := p.name
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return connectors.E(op, connectors.Permanent, fmt.Errorf("refusing to start %s: its SHA-256 does not match the pinned sha256", p.cfg.Path))
	case strings.Contains(msg, "incompatible API version"):
		return connectors.E(op, connectors.Permanent, fmt.Errorf(
			"refusing %s: it speaks another connector protocol version than this hub (version %d); rebuild it with an SDK for protocol %d (go-plugin: %v)",
			p.cfg.Path, wire.ProtocolVersion, wire.ProtocolVersion, err))
	case strings.Contains(msg, "incompatible core API version"), strings.Contains(msg, "Unrecognized remote plugin message"),
		strings.Contains(msg, "unsupported plugin protocol"):
		return connectors.E(op, connectors.Permanent, fmt.Errorf(
			"%s is not a loyaltyhub connector plugin speaking gRPC (the handshake failed): %v", p.cfg.Path, err))
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return connectors.E(op, connectors.Permanent, fmt.Errorf("cannot run %s: %w", p.cfg.Path, err))
	}
	return connectors.E(op, connectors.Transient, fmt.Errorf("starting %s: %w", p.cfg.Path, err))
}

// get returns the running instance, starting one when the last restart
// failed.
func (p *Plugin) get(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	inst, closed := p.cur, p.closed
	p.mu.Unlock()
	if closed {
		return nil, connectors.E(p.name, connectors.Transient, ErrClosed)
	}
	if inst != nil {
		return inst, nil
	}
	if err := p.restart(ctx, nil, "no process running (the last start failed)"); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil, connectors.E(p.name, connectors.Transient, errors.New("plugin is not running"))
	}
	return p.cur, nil
}

// restart replaces dead with a new process, unless another caller already
// did, or dead turns out to be alive. It waits the backoff first.
func (p *Plugin) restart(ctx context.Context, dead *instance, reason string) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return connectors.E(p.name, connectors.Transient, ctx.Err())
	}
	defer func() { <-p.sem }()

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return connectors.E(p.name, connectors.Transient, ErrClosed)
	}
	if p.cur != dead {
		p.mu.Unlock()
		return nil // replaced by another caller meanwhile
	}
	p.mu.Unlock()

	if dead != nil {
		if !dead.client.Exited() && p.healthy(ctx, dead) {
			return nil // the process lives and answers: nothing to restart
		}
		if dead.served.Load() {
			p.inARow = 0
		}
		p.mu.Lock()
		p.cur = nil
		p.mu.Unlock()
		dead.kill()
		p.log.Warn("plugin process died", "pid", dead.pid, "reason", reason)
	}
	p.inARow++
	if wait := p.backoff(p.inARow); wait > 0 {
		p.log.Info("waiting before restarting the plugin", "wait", wait, "restarts_in_a_row", p.inARow)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return connectors.E(p.name, connectors.Transient, fmt.Errorf("plugin is restarting: %w", ctx.Err()))
		}
	}
	inst, err := p.startInstance(ctx)
	if err != nil {
		p.log.Error("plugin restart failed", "error", err, "restarts_in_a_row", p.inARow)
		// The records in flight are not at fault: they wait (Transient)
		// while the plugin cannot run, whatever the cause, and the next
		// call tries to start it again after the backoff.
		return connectors.E(p.name, connectors.Transient, fmt.Errorf("restarting the plugin: %w", err))
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.cur = inst
	}
	p.mu.Unlock()
	if closed {
		inst.kill()
		return connectors.E(p.name, connectors.Transient, ErrClosed)
	}
	n := p.restarts.Add(1)
	p.log.Warn("plugin restarted", "pid", inst.pid, "restarts", n, "reason", reason)
	return nil
}

func (p *Plugin) backoff(inARow int) time.Duration {
	if inARow <= 1 {
		return 0
	}
	d := p.cfg.RestartBackoff
	for i := 2; i < inARow && d < p.cfg.MaxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, p.cfg.MaxRestartBackoff)
}

// healthy asks the child's gRPC health service, as go-plugin serves it.
func (p *Plugin) healthy(ctx context.Context, inst *instance) bool {
	if inst.grpc == nil {
		return !inst.client.Exited()
	}
	cctx, cancel := context.WithTimeout(ctx, min(p.cfg.CallTimeout, 5*time.Second))
	defer cancel()
	resp, err := healthpb.NewHealthClient(inst.grpc).Check(cctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

func (p *Plugin) healthLoop(ctx context.Context) {
	defer close(p.healthDone)
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		inst := p.cur
		p.mu.Unlock()
		switch {
		case inst == nil:
			_ = p.restart(ctx, nil, "no process running (the last start failed)")
		case inst.client.Exited():
			_ = p.restart(ctx, inst, "health check: the process exited")
		case !p.healthy(ctx, inst):
			if ctx.Err() == nil {
				_ = p.restart(ctx, inst, "health check: no answer")
			}
		}
	}
}

// call runs fn against the running child with the call timeout. When the
// child is gone (gRPC UNAVAILABLE), it restarts the child and runs fn once
// more, so the call in flight when the plugin died is retried, not lost.
func (p *Plugin) call(ctx context.Context, method string, fn func(context.Context, *wire.Client) error) error {
	for attempt := 1; ; attempt++ {
		inst, err := p.get(ctx)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
		err = fn(cctx, inst.conn)
		cancel()
		var ce *connectors.Error
		if err == nil || errors.As(err, &ce) {
			inst.served.Store(true) // the connector itself answered
			return err
		}
		if status.Code(err) == codes.Unavailable && ctx.Err() == nil && attempt == 1 {
			p.log.Warn("plugin call failed, the process is unavailable; restarting it and retrying the call",
				"method", method, "pid", inst.pid, "error", err)
			if rerr := p.restart(ctx, inst, method+" failed: "+err.Error()); rerr != nil {
				return rerr
			}
			continue
		}
		return p.classify(method, err, ctx)
	}
}

// classify turns a gRPC failure into a connector error of the right kind.
func (p *Plugin) classify(method string, err error, ctx context.Context) error {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	op := p.name + ": " + method
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded:
		if ctx.Err() != nil {
			return connectors.E(op, connectors.Transient, ctx.Err())
		}
		return connectors.E(op, connectors.Transient, fmt.Errorf("no answer within the call timeout (%s)", p.cfg.CallTimeout))
	case codes.Unavailable:
		return connectors.E(op, connectors.Transient, fmt.Errorf("plugin unavailable: %w", err))
	case codes.Unimplemented:
		return connectors.E(op, connectors.Permanent, fmt.Errorf("plugin does not implement %s: %w", method, err))
	case codes.ResourceExhausted, codes.InvalidArgument:
		return connectors.E(op, connectors.Permanent, err)
	}
	return connectors.E(op, connectors.Other, err)
}

// Describe asks the plugin to describe itself.
func (p *Plugin) Describe(ctx context.Context) (connectors.Description, error) {
	var d connectors.Description
	err := p.call(ctx, "describe", func(ctx context.Context, c *wire.Client) error {
		desc, caps, err := c.Describe(ctx)
		if err == nil {
			d = desc
			p.mu.Lock()
			p.desc, p.caps = desc, caps
			p.mu.Unlock()
		}
		return err
	})
	return d, err
}

// Configure passes the connector's config block; once accepted, it is
// replayed to every restarted process.
func (p *Plugin) Configure(ctx context.Context, config json.RawMessage) error {
	cfg := append([]byte(nil), config...)
	err := p.call(ctx, "configure", func(ctx context.Context, c *wire.Client) error {
		return c.Configure(ctx, cfg)
	})
	if err == nil {
		p.mu.Lock()
		p.config, p.configured = cfg, true
		p.mu.Unlock()
	}
	return err
}

// Check asks the plugin to prove credentials and connectivity.
func (p *Plugin) Check(ctx context.Context) error {
	return p.call(ctx, "check", func(ctx context.Context, c *wire.Client) error { return c.Check(ctx) })
}

// Write writes one batch through the plugin.
func (p *Plugin) Write(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	op := p.name + ": write"
	p.mu.Lock()
	caps, maxBatch := p.caps, p.desc.MaxBatch
	p.mu.Unlock()
	if !caps.Write {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, errors.New("the plugin does not write (it implements no Writer)"))
	}
	if !req.Operation.Valid() {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent,
			fmt.Errorf("operation %q is not one of upsert, insert, update, delete", req.Operation))
	}
	if maxBatch > 0 && len(req.Records) > maxBatch {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent,
			fmt.Errorf("batch of %d records is larger than the plugin's max_batch %d", len(req.Records), maxBatch))
	}
	wreq, err := wire.WriteRequestToPB(req)
	if err != nil {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, err)
	}
	var out connectors.WriteResponse
	err = p.call(ctx, "write", func(ctx context.Context, c *wire.Client) error {
		var err error
		out, err = c.Write(ctx, wreq)
		return err
	})
	return out, err
}

// Read reads one page of changes through the plugin.
func (p *Plugin) Read(ctx context.Context, req connectors.ReadRequest) (connectors.ReadResponse, error) {
	p.mu.Lock()
	caps := p.caps
	p.mu.Unlock()
	if !caps.Read {
		return connectors.ReadResponse{}, connectors.E(p.name+": read", connectors.Permanent, errors.New("the plugin does not read (it implements no Reader)"))
	}
	var out connectors.ReadResponse
	err := p.call(ctx, "read", func(ctx context.Context, c *wire.Client) error {
		var err error
		out, err = c.Read(ctx, req)
		return err
	})
	return out, err
}

// DescribeObject describes one object of the plugin's target.
func (p *Plugin) DescribeObject(ctx context.Context, object string) (connectors.ObjectSchema, error) {
	p.mu.Lock()
	caps := p.caps
	p.mu.Unlock()
	if !caps.DescribeObject {
		return connectors.ObjectSchema{}, connectors.E(p.name+": describe object", connectors.Permanent,
			errors.New("the plugin does not describe objects (it implements no SchemaDescriber)"))
	}
	var out connectors.ObjectSchema
	err := p.call(ctx, "describe object", func(ctx context.Context, c *wire.Client) error {
		var err error
		out, err = c.DescribeObject(ctx, object)
		return err
	})
	return out, err
}

// GetRecord reads one record of the plugin's target by external id. A
// plugin that cannot read records (no RecordGetter, or built before the RPC
// existed) gives a Permanent error wrapping connectors.ErrCannotReadRecords.
func (p *Plugin) GetRecord(ctx context.Context, object, externalIDField, key string) (map[string]any, bool, error) {
	op := p.name + ": get record"
	var (
		fields map[string]any
		found  bool
	)
	err := p.call(ctx, "get record", func(ctx context.Context, c *wire.Client) error {
		var err error
		fields, found, err = c.GetRecord(ctx, object, externalIDField, key)
		if status.Code(err) == codes.Unimplemented {
			return connectors.E(op, connectors.Permanent, connectors.ErrCannotReadRecords)
		}
		return err
	})
	return fields, found, err
}

// Close stops the health checks and the child process (asking it to shut
// down first, then killing it). It is safe to call more than once.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	inst := p.cur
	p.cur = nil
	p.mu.Unlock()
	if p.stopHealth != nil {
		p.stopHealth()
		<-p.healthDone
	}
	// Wait for a restart under way to notice the close.
	p.sem <- struct{}{}
	<-p.sem
	if inst != nil {
		inst.kill()
	}
	p.releaseSockets()
	p.log.Info("plugin stopped", "restarts", p.restarts.Load())
	return nil
}

// PID is the process id of the running child, 0 when none runs.
func (p *Plugin) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Restarts is how many times the child was restarted.
func (p *Plugin) Restarts() int { return int(p.restarts.Load()) }

// Capabilities says which optional parts of the protocol the plugin serves.
type Capabilities struct {
	Write, Read, DescribeObject bool
	// GetRecord: the plugin reads single records (only plugins built with
	// an SDK that knows the GetRecord RPC report it).
	GetRecord bool
	// SDK is what the plugin reported as its SDK ("loyaltyhub-go-sdk/1").
	SDK string
}

// Capabilities reports what the plugin said in its last Describe.
func (p *Plugin) Capabilities() Capabilities {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Capabilities{Write: p.caps.Write, Read: p.caps.Read, DescribeObject: p.caps.DescribeObject, GetRecord: p.caps.GetRecord, SDK: p.caps.SDK}
}

// Interface guards.
var (
	_ connectors.Connector       = (*Plugin)(nil)
	_ connectors.Writer          = (*Plugin)(nil)
	_ connectors.Reader          = (*Plugin)(nil)
	_ connectors.SchemaDescriber = (*Plugin)(nil)
	_ connectors.RecordGetter    = (*Plugin)(nil)
)
