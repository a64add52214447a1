package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by calls on a closed Bus, Publisher or Subscriber.
var ErrClosed = errors.New("bus is closed")

// ErrUnknownConsumer is returned (wrapped) by Pending for a consumer that
// does not exist yet: no Subscriber with that name has subscribed.
var ErrUnknownConsumer = errors.New("no such consumer")

// Bus is one connection to NATS JetStream (and, when embedded, the server
// itself) with the hub's stream. It is safe for concurrent use.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server // nil with an external URL
	unlock func()         // releases StoreDir; nil with an external URL
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	pub    *Publisher
	closed chan struct{} // closed when the NATS connection is closed

	mu       sync.Mutex
	isClosed bool
	subs     map[*Subscriber]struct{}
}

// Open connects to NATS (starting the embedded server when cfg.URL is empty)
// and creates the stream, or updates it to cfg. ctx bounds the start-up.
// A nil logger discards logs.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		cfg:    cfg,
		log:    logger.With("component", "bus"),
		closed: make(chan struct{}),
		subs:   map[*Subscriber]struct{}{},
	}

	opts := []nats.Option{
		nats.Name(cfg.ClientName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DrainTimeout(cfg.CloseTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("NATS client error", "subject", subject, "err", err)
		}),
	}
	target := cfg.URL
	if cfg.URL == "" {
		if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
			return nil, fmt.Errorf("bus: StoreDir %q: %w", cfg.StoreDir, err)
		}
		unlock, err := lockStoreDir(cfg.StoreDir)
		if err != nil {
			return nil, err
		}
		b.unlock = unlock
		// JetStream reserves a stream's MaxBytes on disk up front and
		// refuses a stream it cannot reserve: on a small disk, cap the bus
		// at half of the free space rather than fail to start.
		if free, ok := freeBytes(cfg.StoreDir); ok && cfg.MaxBytes > free/2 {
			b.log.Warn("the disk holding the bus has less free space than bus.max_bytes needs; capping the bus at half of it",
				"store_dir", cfg.StoreDir, "max_bytes", cfg.MaxBytes, "free_bytes", free, "capped_at", free/2)
			cfg.MaxBytes = free / 2
			b.cfg.MaxBytes = cfg.MaxBytes
		}
		srv, err := startEmbedded(cfg, b.log)
		if err != nil {
			unlock()
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
		target = "embedded server in " + cfg.StoreDir
	} else {
		opts = append(opts, cfg.ClientOptions...)
	}

	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("bus: connecting to NATS at %s: %w", redact(target), err)
	}
	b.nc = nc
	fail := func(err error) (*Bus, error) {
		nc.Close()
		b.shutdownServer()
		return nil, err
	}

	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
	)
	if err != nil {
		return fail(fmt.Errorf("bus: JetStream client: %w", err))
	}
	b.stream, err = b.js.CreateOrUpdateStream(ctx, b.streamConfig())
	if err != nil {
		hint := ""
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			hint = " (the server at URL must run with JetStream enabled)"
		}
		if b.cfg.MaxBytes > 0 && strings.Contains(err.Error(), "insufficient storage") {
			// JetStream reserves a stream's max bytes when it is created.
			hint = fmt.Sprintf(" (JetStream reserves the stream's bus.max_bytes, %d bytes, up front: lower it, or free disk space for the server)", b.cfg.MaxBytes)
		}
		return fail(fmt.Errorf("bus: creating or updating stream %q for subjects %q on %s%s: %w",
			cfg.Stream, cfg.SubjectPrefix+".>", redact(target), hint, err))
	}
	b.pub = &Publisher{b: b}
	b.log.Info("bus ready", "nats", redact(target), "stream", cfg.Stream, "subjects", cfg.SubjectPrefix+".>")
	return b, nil
}

func (b *Bus) streamConfig() jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "loyaltyhub bus: every topic under " + b.cfg.SubjectPrefix,
		Subjects:    []string{b.cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      b.cfg.MaxAge,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DedupWindow,
	}
	if b.cfg.MaxBytes > 0 {
		sc.MaxBytes = b.cfg.MaxBytes
	}
	return sc
}

// startEmbedded starts a JetStream server that listens on no port.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "loyaltyhub-embedded",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		DontListen: true,
		NoSigs:     true,
		SyncAlways: cfg.SyncAlways,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded NATS server with StoreDir %q: %w", cfg.StoreDir, err)
	}
	srv.SetLoggerV2(serverLogger{log.With("nats", "embedded")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded NATS server with StoreDir %q did not start within 30s (see the log)", cfg.StoreDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded NATS server could not enable JetStream in StoreDir %q (is another process using it? see the log)", cfg.StoreDir)
	}
	return srv, nil
}

// MaxMessageBytes is the largest message the bus takes (the NATS server's
// max_payload), headers included.
func (b *Bus) MaxMessageBytes() int { return int(b.nc.MaxPayload()) }

// Publisher returns the bus's publisher. It is shared: its Close does nothing,
// Bus.Close ends it.
func (b *Bus) Publisher() *Publisher { return b.pub }

// Subscriber returns a subscriber that reads through the durable consumer
// named consumer (letters, digits, '-' and '_'), created on its first
// Subscribe. At most inflight messages (1 to MaxInflight) are handed out and
// not yet acked at any time, per Subscribe call; the consumer's
// MaxAckPending is raised to inflight when it is lower. Processes that use
// the same consumer name share its messages (each goes to one of them).
func (b *Bus) Subscriber(consumer string, inflight int) (*Subscriber, error) {
	if !nameRE.MatchString(consumer) || len(consumer) > maxNames {
		return nil, fmt.Errorf("bus: consumer name %q is not valid: use up to %d letters, digits, '-' or '_'", consumer, maxNames)
	}
	if inflight < 1 || inflight > MaxInflight {
		return nil, fmt.Errorf("bus: consumer %q: inflight %d must be between 1 and %d", consumer, inflight, MaxInflight)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed {
		return nil, ErrClosed
	}
	s := newSubscriber(b, consumer, inflight)
	b.subs[s] = struct{}{}
	return s, nil
}

// MaxInflight bounds a Subscriber's inflight (a sync's: 2 x its batch size,
// at most 100,000 in the config).
const MaxInflight = 100000

// Pending returns how many messages the durable consumer has not acked yet:
// those not yet delivered plus those delivered and awaiting an ack. It wraps
// ErrUnknownConsumer when the consumer does not exist.
func (b *Bus) Pending(ctx context.Context, consumer string) (int, error) {
	c, err := b.stream.Consumer(ctx, consumer)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, fmt.Errorf("bus: consumer %q in stream %q: %w", consumer, b.cfg.Stream, ErrUnknownConsumer)
		}
		return 0, fmt.Errorf("bus: consumer %q in stream %q: %w", consumer, b.cfg.Stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer %q in stream %q: %w", consumer, b.cfg.Stream, err)
	}
	return int(info.NumPending) + info.NumAckPending, nil
}

// Stored returns how many messages the stream holds on a topic ("" for all
// topics), acked or not: what ingress has durably published.
func (b *Bus) Stored(ctx context.Context, topic string) (uint64, error) {
	subject := b.cfg.SubjectPrefix + ".>"
	if topic != "" {
		subject = b.Subject(topic)
	}
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("bus: stream %q: %w", b.cfg.Stream, err)
	}
	if topic == "" {
		return info.State.Msgs, nil
	}
	return info.State.Subjects[subject], nil
}

// Subject returns the NATS subject a topic is stored on.
func (b *Bus) Subject(topic string) string { return b.cfg.SubjectPrefix + "." + topic }

// Close closes every open Subscriber (waiting up to CloseTimeout for held
// messages to be acked), drains the connection so that nothing in flight is
// lost, and shuts the embedded server down. Later calls return nil.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.isClosed {
		b.mu.Unlock()
		return nil
	}
	b.isClosed = true
	subs := make([]*Subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, s := range subs {
		wg.Go(func() {
			if err := s.Close(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()

	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("bus: draining NATS connection: %w", err))
		b.nc.Close()
	}
	select {
	case <-b.closed:
	case <-time.After(b.cfg.CloseTimeout + time.Second):
		errs = append(errs, fmt.Errorf("bus: NATS connection did not drain within %s", b.cfg.CloseTimeout))
		b.nc.Close()
	}
	b.shutdownServer()
	b.log.Info("bus closed")
	return errors.Join(errs...)
}

func (b *Bus) forget(s *Subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	if b.unlock != nil {
		b.unlock()
	}
}

// redact hides passwords in (comma-separated) NATS URLs for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// serverLogger sends the embedded server's log to slog. Its notices (start-up
// banners, config) go to Debug.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
