// Package emulator plays the core loyalty ledger for demos, tests and
// benchmarks: it generates realistic member traffic and sends it to the hub's
// webhook ingress as CloudEvents, the way a ledger's outbox relay would.
//
// A plan can carry duplicates (the same event sent again, as an at-least-once
// relay does) and out-of-order deliveries (an older version of a member sent
// after a newer one), so the hub's guarantees can be checked against the
// plan's expected final state.
package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Member is the ledger's member state: what a loyalty.member.upserted event carries.
type Member struct {
	ID            string    `json:"id"`
	Version       int64     `json:"version"`
	FirstName     string    `json:"first_name"`
	LastName      string    `json:"last_name"`
	Email         string    `json:"email"`
	Phone         string    `json:"phone"`
	Status        string    `json:"status"`
	Tier          string    `json:"tier"`
	PointsBalance int64     `json:"points_balance"`
	EnrolledAt    time.Time `json:"enrolled_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// CloudEvent is the structured-mode JSON of one event.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Member    `json:"data"`
}

// PlanConfig shapes a generated stream of member events.
type PlanConfig struct {
	// Members is how many distinct members the events touch. Default 1000.
	Members int
	// Events is how many distinct events (versions) to make. Default 10000.
	Events int
	// DuplicateRate is the share of extra deliveries that repeat an earlier
	// event unchanged (same id). Default 0.
	DuplicateRate float64
	// ReorderRate is the share of events delivered after a newer version of
	// the same member. Default 0.
	ReorderRate float64
	// Seed makes the plan reproducible.
	Seed uint64
	// Start is the time of the first change. Default 2026-01-01T00:00:00Z.
	Start time.Time
}

// Plan is a sequence of deliveries and what the target must hold after them.
type Plan struct {
	// Deliveries in send order (duplicates and reorders included).
	Deliveries []CloudEvent
	// Newest is the newest state of each member, by member id.
	Newest map[string]Member
	// Distinct is the number of distinct event ids.
	Distinct int
	// Duplicates and Reordered count the injected anomalies.
	Duplicates, Reordered int
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Donald", "Frances", "Linus", "Margaret", "Dennis"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Knuth", "Allen", "Torvalds", "Hamilton", "Ritchie"}
	statuses   = []string{"active", "active", "active", "active", "suspended", "closed"}
)

// NewPlan generates a plan. Each event is a new version of one member.
func NewPlan(cfg PlanConfig) *Plan {
	if cfg.Members <= 0 {
		cfg.Members = 1000
	}
	if cfg.Events <= 0 {
		cfg.Events = 10000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	state := make(map[string]Member, cfg.Members)
	events := make([]CloudEvent, 0, cfg.Events)
	for i := 0; i < cfg.Events; i++ {
		// The first pass enrols every member once, then changes are random.
		n := i
		if i >= cfg.Members {
			n = rng.IntN(cfg.Members)
		}
		id := fmt.Sprintf("M-%06d", n+1)
		at := cfg.Start.Add(time.Duration(i) * time.Second)
		m, ok := state[id]
		if !ok {
			fn, ln := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
			m = Member{ID: id, FirstName: fn, LastName: ln, EnrolledAt: at,
				Email: fmt.Sprintf("%s.%s.%d@example.com", lower(fn), lower(ln), n+1)}
		}
		m.Version++
		m.Phone = fmt.Sprintf("+4420%08d", rng.IntN(100000000))
		m.Status = statuses[rng.IntN(len(statuses))]
		m.Tier = Tiers[rng.IntN(len(Tiers))]
		m.PointsBalance += int64(rng.IntN(500))
		m.UpdatedAt = at
		state[id] = m
		events = append(events, CloudEvent{
			SpecVersion: "1.0", ID: fmt.Sprintf("evt-%s-v%d", id, m.Version), Source: "urn:loyaltyhub:ledger-emulator",
			Type: "loyalty.member.upserted", Subject: id, Time: at, DataContentType: "application/json", Data: m,
		})
	}
	p := &Plan{Newest: state, Distinct: len(events)}

	// Reorder: move an event to just after a newer version of the same member.
	nextOf := map[string][]int{} // member → indexes of its events, ascending
	for i, e := range events {
		nextOf[e.Subject] = append(nextOf[e.Subject], i)
	}
	moveAfter := make(map[int]int) // event index → the index it is delivered after
	for i, e := range events {
		idxs := nextOf[e.Subject]
		k := int(e.Data.Version) - 1 // position of i among its member's events
		if k+1 < len(idxs) && rng.Float64() < cfg.ReorderRate {
			moveAfter[i] = idxs[k+1+rng.IntN(len(idxs)-k-1)]
		}
	}
	var order []CloudEvent
	trailing := map[int][]CloudEvent{}
	for i, e := range events {
		if j, ok := moveAfter[i]; ok {
			// It carries along whatever was already waiting for it.
			trailing[j] = append(append(trailing[j], e), flush(trailing, i)...)
			p.Reordered++
			continue
		}
		order = append(order, e)
		order = append(order, flush(trailing, i)...)
	}
	// Duplicates: re-send a random delivery later on: a copy of order[src]
	// goes before order[at] (at the end when at == len), in one pass (a
	// copy into the middle of a slice per duplicate took minutes for
	// 100,000 events).
	dups := int(float64(len(events)) * cfg.DuplicateRate)
	before := make(map[int][]CloudEvent, dups)
	for d := 0; d < dups; d++ {
		src := rng.IntN(len(order))
		at := src + 1 + rng.IntN(len(order)-src)
		before[at] = append(before[at], order[src])
		p.Duplicates++
	}
	out := make([]CloudEvent, 0, len(order)+dups)
	for i, e := range order {
		out = append(out, before[i]...)
		out = append(out, e)
	}
	p.Deliveries = append(out, before[len(order)]...)
	return p
}

// flush takes the events waiting to go right after index i.
func flush(trailing map[int][]CloudEvent, i int) []CloudEvent {
	evs := trailing[i]
	delete(trailing, i)
	return evs
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// SegmentChange is what a loyalty.segment.membership.changed event carries:
// the members who joined and left the segment in this version.
type SegmentChange struct {
	SegmentID string   `json:"segment_id"`
	Version   int64    `json:"version"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
}

// SegmentEvent is the structured-mode JSON of one segment change.
type SegmentEvent struct {
	SpecVersion     string        `json:"specversion"`
	ID              string        `json:"id"`
	Source          string        `json:"source"`
	Type            string        `json:"type"`
	Subject         string        `json:"subject"`
	Time            time.Time     `json:"time"`
	DataContentType string        `json:"datacontenttype"`
	Data            SegmentChange `json:"data"`
}

// Tiers are the tiers generated members have, in order; each is the tier
// segment "tier-<tier>".
var Tiers = []string{"bronze", "silver", "gold", "platinum"}

// Segments tracks tier segments (who is in "tier-gold", ...) across rounds
// of member changes, the way a ledger's segmentation job publishes them.
type Segments struct {
	members map[string]map[string]bool // segment → members
	version int64
}

// Update computes each tier segment from the newest member states and
// returns one change event per segment whose membership changed since the
// last Update (the first: everyone joins), members sorted.
func (s *Segments) Update(newest map[string]Member, at time.Time) []SegmentEvent {
	if s.members == nil {
		s.members = map[string]map[string]bool{}
	}
	s.version++
	now := map[string]map[string]bool{}
	for id, m := range newest {
		seg := "tier-" + m.Tier
		if now[seg] == nil {
			now[seg] = map[string]bool{}
		}
		now[seg][id] = true
	}
	var out []SegmentEvent
	for _, tier := range Tiers {
		seg := "tier-" + tier
		ch := SegmentChange{SegmentID: seg, Version: s.version, Added: []string{}, Removed: []string{}}
		for id := range now[seg] {
			if !s.members[seg][id] {
				ch.Added = append(ch.Added, id)
			}
		}
		for id := range s.members[seg] {
			if !now[seg][id] {
				ch.Removed = append(ch.Removed, id)
			}
		}
		if len(ch.Added)+len(ch.Removed) == 0 {
			continue
		}
		slices.Sort(ch.Added)
		slices.Sort(ch.Removed)
		out = append(out, SegmentEvent{SpecVersion: "1.0", ID: fmt.Sprintf("seg-%s-v%d", seg, s.version),
			Source: "urn:loyaltyhub:ledger-emulator", Type: "loyalty.segment.membership.changed", Subject: seg,
			Time: at.UTC(), DataContentType: "application/json", Data: ch})
	}
	s.members = now
	return out
}

// Sender posts deliveries to the hub's ingress in batched mode.
type Sender struct {
	// URL is the ingress endpoint, e.g. http://127.0.0.1:8080/v1/events/ledger.
	URL string
	// Secret, when set, signs each request as Standard Webhooks prescribes
	// (webhook-id, webhook-timestamp, webhook-signature): "whsec_" and
	// base64, or raw bytes. Each batch is one delivery: its retries keep
	// its webhook-id and are signed again with a fresh timestamp.
	Secret string
	// BatchSize is events per request. Default 100.
	BatchSize int
	// Client defaults to a client with a 30 s timeout.
	Client *http.Client
	// RetryFor is how long a batch is retried on 5xx/network errors (the
	// hub may be restarting). Default 2 minutes.
	RetryFor time.Duration
}

// Send posts every delivery, batch by batch, retrying a batch on transient
// failures like an at-least-once relay. progress, if set, is called after each batch.
func (s *Sender) Send(ctx context.Context, deliveries []CloudEvent, progress func(sent int)) error {
	return sendAll(ctx, s, deliveries, progress)
}

// SendSegments posts segment changes like Send.
func (s *Sender) SendSegments(ctx context.Context, changes []SegmentEvent) error {
	return sendAll(ctx, s, changes, nil)
}

func sendAll[E any](ctx context.Context, s *Sender, deliveries []E, progress func(sent int)) error {
	if s.BatchSize <= 0 {
		s.BatchSize = 100
	}
	if s.Client == nil {
		s.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if s.RetryFor <= 0 {
		s.RetryFor = 2 * time.Minute
	}
	for start := 0; start < len(deliveries); start += s.BatchSize {
		end := min(start+s.BatchSize, len(deliveries))
		body, err := json.Marshal(deliveries[start:end])
		if err != nil {
			return err
		}
		if err := s.post(ctx, body); err != nil {
			return fmt.Errorf("sending events %d..%d: %w", start, end-1, err)
		}
		if progress != nil {
			progress(end)
		}
	}
	return nil
}

func (s *Sender) post(ctx context.Context, body []byte) error {
	deadline := time.Now().Add(s.RetryFor)
	wait := 100 * time.Millisecond
	sum := sha256.Sum256(body)
	id := "msg_" + hex.EncodeToString(sum[:12]) // one delivery, however often it is tried
	for {
		status, msg, err := s.postOnce(ctx, id, body)
		switch {
		case err == nil && status == http.StatusAccepted:
			return nil
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			return fmt.Errorf("hub refused the batch: %d %s", status, msg)
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("hub answered %d %s", status, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (s *Sender) postOnce(ctx context.Context, id string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	if s.Secret != "" {
		if err := Sign(req.Header, s.Secret, id, time.Now(), body); err != nil {
			return 0, "", err
		}
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(msg), nil
}

// Sign sets the Standard Webhooks headers of one delivery on h: its id, its
// time and its signature with secret ("whsec_" and base64, or raw bytes).
func Sign(h http.Header, secret, id string, at time.Time, body []byte) error {
	var wh *standardwebhooks.Webhook
	var err error
	if strings.HasPrefix(secret, "whsec_") {
		wh, err = standardwebhooks.NewWebhook(secret)
	} else {
		wh, err = standardwebhooks.NewWebhookRaw([]byte(secret))
	}
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	sig, err := wh.Sign(id, at, body)
	if err != nil {
		return err
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", sig)
	return nil
}
