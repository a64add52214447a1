package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// PollConfig is the polling of one object of a connector that reads.
type PollConfig struct {
	// Connector is the connector's name; its changes enter the hub as events
	// of that source (topics "<connector>.<entity>").
	Connector string
	// Object is the connector's object to read.
	Object string
	// Interval is the wait between reads once caught up. Default 2s.
	Interval time.Duration
	// PageSize is the most changes per read. Default 100.
	PageSize int
	// Lease, when set, makes the poller read only while this replica holds
	// its lease (LeaseName of CursorName), taken or renewed before each read,
	// so that replicas do not all read the same changes. Reads are
	// idempotent (same change ids, the version guard), so a read slower than
	// the lease's TTL overlapping another replica's does no harm.
	Lease *LeaseConfig
}

// Poller reads pages of changes from a connector and publishes them on the
// bus. The cursor is stored only after the page's events are durably on the
// bus, so a crash re-reads at most one page: its events come again and the
// version guard skips them.
type Poller struct {
	cfg    PollConfig
	reader connectors.Reader
	store  store.Store
	pub    message.Publisher
	logger *slog.Logger
}

// NewPoller builds a poller; Run starts it.
func NewPoller(cfg PollConfig, reader connectors.Reader, st store.Store, pub message.Publisher, logger *slog.Logger) *Poller {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, reader: reader, store: st, pub: pub,
		logger: logger.With("connector", cfg.Connector, "object", cfg.Object)}
}

// CursorName is where the poller keeps its cursor in the state store.
func (p *Poller) CursorName() string { return "read/" + p.cfg.Connector + "/" + p.cfg.Object }

// Run polls until ctx is done.
func (p *Poller) Run(ctx context.Context) {
	if l := p.cfg.Lease; l != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = l.Leaser.ReleaseLease(rctx, LeaseName(p.CursorName()), l.Holder)
		}()
	}
	wait := time.Duration(0)
	failures := 0
	standingBy := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if l := p.cfg.Lease; l != nil {
			lease, ok, err := l.Leaser.AcquireLease(ctx, LeaseName(p.CursorName()), l.Holder, l.TTL)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				p.logger.Warn("taking the poller's lease failed; retrying", "err", err)
			case !ok && lease.Holder != standingBy:
				standingBy = lease.Holder
				p.logger.Info("standing by: another replica polls", "running_on", lease.Holder, "until", lease.ExpiresAt)
			}
			if !ok {
				wait = l.TTL / 3
				continue
			}
			if standingBy != "" {
				p.logger.Info("lease acquired: this replica polls")
				standingBy = ""
			}
		}
		more, err := p.poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = min(p.cfg.Interval*time.Duration(1<<min(failures, 6)), 5*time.Minute)
			if ra := connectors.RetryAfterOf(err); ra > wait {
				wait = ra
			}
			p.logger.Warn("read failed; trying again", "err", err, "kind", connectors.KindOf(err), "wait", wait)
		case more:
			failures, wait = 0, 0
		default:
			failures, wait = 0, p.cfg.Interval
		}
	}
}

// poll reads and publishes one page; it reports whether more is ready.
func (p *Poller) poll(ctx context.Context) (bool, error) {
	name := p.CursorName()
	cursor, _, err := p.store.GetCursor(ctx, name)
	if err != nil {
		return false, fmt.Errorf("reading cursor %s: %w", name, err)
	}
	resp, err := p.reader.Read(ctx, connectors.ReadRequest{Object: p.cfg.Object, Cursor: cursor, Limit: p.cfg.PageSize})
	if err != nil {
		return false, err
	}
	var topics []string
	byTopic := map[string][]*message.Message{}
	for i, ch := range resp.Changes {
		ev, err := p.toEvent(ch)
		if err != nil {
			// A change the hub cannot take is logged whole, so it can be
			// found and fixed at the source; it does not stop the feed.
			p.logger.Error("change refused", "index", i, "id", truncate(ch.ID, 300), "err", err, "change", truncate(string(mustJSON(ch)), 4096))
			continue
		}
		msg, err := ev.ToMessage()
		if err != nil {
			return false, err
		}
		topic := ev.Topic()
		if _, ok := byTopic[topic]; !ok {
			topics = append(topics, topic)
		}
		byTopic[topic] = append(byTopic[topic], msg)
	}
	for _, topic := range topics {
		if err := p.pub.Publish(topic, byTopic[topic]...); err != nil {
			return false, connectors.E("pipeline.Poller", connectors.Transient, fmt.Errorf("publishing to %s: %w", topic, err))
		}
	}
	if resp.Cursor != cursor {
		if err := p.store.SetCursor(ctx, name, resp.Cursor); err != nil {
			return false, fmt.Errorf("storing cursor %s: %w", name, err)
		}
	}
	if len(resp.Changes) > 0 {
		p.logger.Debug("changes read", "count", len(resp.Changes), "cursor", resp.Cursor)
	}
	return resp.More, nil
}

// toEvent turns a change into a hub event of source p.cfg.Connector.
func (p *Poller) toEvent(ch connectors.Change) (*event.Event, error) {
	var errs []error
	if ch.ID == "" {
		errs = append(errs, errors.New("id is empty"))
	}
	if _, ok := event.Types[ch.Type]; !ok {
		errs = append(errs, fmt.Errorf("type %q is not a hub event type", ch.Type))
	}
	if ch.Subject == "" {
		errs = append(errs, errors.New("subject is empty"))
	}
	if ch.Version < 0 || ch.Version > event.MaxVersion {
		errs = append(errs, fmt.Errorf("version %d is not from 0 to %d", ch.Version, int64(event.MaxVersion)))
	}
	for name, v := range map[string]string{"id": ch.ID, "subject": ch.Subject} {
		if len(v) > event.MaxKeyBytes {
			errs = append(errs, fmt.Errorf("%s is %d bytes; at most %d", name, len(v), event.MaxKeyBytes))
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) || !utf8.ValidString(v) {
			errs = append(errs, fmt.Errorf("%s must be UTF-8 without control characters", name))
		}
	}
	data := ch.Data
	if !gjson.ValidBytes(data) || !gjson.ParseBytes(data).IsObject() {
		errs = append(errs, errors.New("data is not a JSON object"))
	} else {
		// One key and one version, whoever reads them: the guard reads
		// the change's, the mapping reads the data's.
		if v := gjson.GetBytes(data, "version"); v.Exists() && (v.Type != gjson.Number || v.Raw != strconv.FormatInt(ch.Version, 10)) {
			errs = append(errs, fmt.Errorf("data.version %s differs from the change's version %d", v.Raw, ch.Version))
		}
		if id := gjson.GetBytes(data, "id"); id.Exists() && (id.Type != gjson.String || id.Str != ch.Subject) {
			errs = append(errs, fmt.Errorf("data.id %s differs from the change's subject %q", id.Raw, ch.Subject))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Mappings read the version from the data, as for webhook events.
	if !gjson.GetBytes(data, "version").Exists() {
		var err error
		if data, err = sjson.SetBytes(data, "version", ch.Version); err != nil {
			return nil, err
		}
	}
	return &event.Event{
		ID: ch.ID, Source: "urn:loyaltyhub:connector:" + p.cfg.Connector, SpecVersion: "1.0", Type: ch.Type,
		Subject: ch.Subject, Time: ch.Time, DataContentType: "application/json", Data: data,
		Origin: p.cfg.Connector, Version: ch.Version,
	}, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// truncate keeps log lines bounded: a hostile source's 64 KiB id is
// logged as its first n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d bytes)", len(s))
}
