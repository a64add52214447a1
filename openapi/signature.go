package openapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com): the
// delivery's id, its Unix time in seconds, and one or more space-separated
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
)

// signatureFormat says, in errors, what a signature is made of.
const signatureFormat = "v1,<base64 of HMAC-SHA256(key, webhook-id + \".\" + webhook-timestamp + \".\" + body)>, as Standard Webhooks libraries sign"

// Deliveries remembers the signed deliveries ingress accepted, by source and
// webhook-id, so that a delivery sent again inside its source's tolerance
// window is answered without being published again. The state store
// implements it (shared by hub replicas and kept across restarts); nil in
// ServerConfig keeps them in this process's memory.
type Deliveries interface {
	// SeenDelivery returns the digest remembered for delivery id of source,
	// and true, when one is remembered and not expired.
	SeenDelivery(ctx context.Context, source, id string) (digest string, found bool, err error)
	// RememberDelivery remembers delivery id of source with digest until
	// the given time.
	RememberDelivery(ctx context.Context, source, id, digest string, until time.Time) error
}

// delivery is a request's verified signature.
type delivery struct {
	id     string
	at     time.Time
	digest string // hex SHA-256 of the body
	// replayed: this id was accepted before with the same body.
	replayed bool
}

// source is a declared source, ready to verify its requests.
type source struct {
	hooks     []*standardwebhooks.Webhook // one per key; empty when insecure
	tolerance time.Duration
}

func newSource(cfg SourceConfig) (*source, error) {
	src := &source{tolerance: cfg.Tolerance}
	for i, key := range cfg.Keys {
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		src.hooks = append(src.hooks, wh)
	}
	return src, nil
}

// verifySignature checks a signed source's request: the three Standard
// Webhooks headers, the timestamp within the source's tolerance, a
// signature made with one of its keys, and whether this delivery was
// accepted before. It answers 401 (or 409, 503) itself and returns false
// when the request must not go on.
func (s *Server) verifySignature(w http.ResponseWriter, r *http.Request, name string, src *source, body []byte) (delivery, bool) {
	refuse := func(header, rule string) (delivery, bool) {
		s.rejectRequest(name, reasonUnauthorized)
		w.Header().Set("WWW-Authenticate", `Standard-Webhooks headers="webhook-id webhook-timestamp webhook-signature"`)
		p := &Problem{
			Type:   problemUnauthorized,
			Status: http.StatusUnauthorized,
			Detail: fmt.Sprintf("source %q requires a Standard Webhooks signature: %s", name, rule),
		}
		p.addErrors([]FieldError{requestFault(header, rule)})
		writeProblem(w, p)
		return delivery{}, false
	}
	var missing []FieldError
	for _, h := range []string{headerWebhookID, headerWebhookTimestamp, headerWebhookSignature} {
		if r.Header.Get(h) == "" {
			missing = append(missing, requestFault(h, "is required: the source is signed (Standard Webhooks)"))
		}
	}
	if len(missing) > 0 {
		s.rejectRequest(name, reasonUnauthorized)
		w.Header().Set("WWW-Authenticate", `Standard-Webhooks headers="webhook-id webhook-timestamp webhook-signature"`)
		p := &Problem{Type: problemUnauthorized, Status: http.StatusUnauthorized,
			Detail: fmt.Sprintf("source %q requires a Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature)", name)}
		p.addErrors(missing)
		writeProblem(w, p)
		return delivery{}, false
	}
	id := r.Header.Get(headerWebhookID)
	if len(id) > MaxIDBytes || hasControl(id) {
		return refuse(headerWebhookID, fmt.Sprintf("must be at most %d bytes without control characters", MaxIDBytes))
	}
	secs, err := strconv.ParseInt(r.Header.Get(headerWebhookTimestamp), 10, 64)
	if err != nil {
		return refuse(headerWebhookTimestamp, "must be the delivery's Unix time in whole seconds, e.g. "+strconv.FormatInt(time.Now().Unix(), 10))
	}
	at := time.Unix(secs, 0)
	// In seconds, not a Duration (a timestamp centuries off overflows one),
	// and compared so that no subtraction overflows.
	now, tol := time.Now().Unix(), int64(src.tolerance/time.Second)
	if secs < now-tol || secs > now+tol {
		const century = 100 * 365 * 24 * 3600
		away := "more than 100 years"
		if secs > now-century && secs < now+century {
			away = (time.Duration(max(now-secs, secs-now)) * time.Second).String()
		}
		return refuse(headerWebhookTimestamp, fmt.Sprintf("is %s away from the hub's clock; it must be within %s (sources.%s.tolerance): sign each delivery when it is sent",
			away, src.tolerance, name))
	}
	ok := false
	for _, wh := range src.hooks {
		// The timestamp was checked above, against this source's tolerance
		// (the library's is fixed at 5 minutes).
		if wh.VerifyIgnoringTimestamp(body, r.Header) == nil {
			ok = true // no early exit: every key is tried, whichever matched
		}
	}
	if !ok {
		return refuse(headerWebhookSignature, "must hold a signature of this delivery made with one of the source's keys: "+signatureFormat)
	}
	sum := sha256.Sum256(body)
	d := delivery{id: id, at: at, digest: hex.EncodeToString(sum[:])}
	seen, found, err := s.deliveries.SeenDelivery(r.Context(), name, id)
	switch {
	case err != nil:
		s.logger.Error("reading remembered deliveries failed", "source", name, "error", err)
		s.rejectRequest(name, reasonPublishFailed)
		s.unavailable(w, problemPublishFailed, "the hub cannot check this delivery against replays now; send it again")
		return delivery{}, false
	case found && seen != d.digest:
		s.rejectRequest(name, reasonConflict)
		p := &Problem{Type: problemReplayConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("webhook-id %q was accepted with another body within the last %s; a new delivery needs a new webhook-id", id, src.tolerance)}
		p.addErrors([]FieldError{requestFault(headerWebhookID, "must name one delivery: this id was used for a different body")})
		writeProblem(w, p)
		return delivery{}, false
	case found:
		d.replayed = true
	}
	return d, true
}

// remember records an accepted delivery until its timestamp (or now, if
// later) plus the tolerance: past that, a replay fails the timestamp check.
func (s *Server) remember(ctx context.Context, name string, src *source, d delivery) {
	until := d.at
	if now := time.Now(); now.After(until) {
		until = now
	}
	if err := s.deliveries.RememberDelivery(ctx, name, d.id, d.digest, until.Add(src.tolerance)); err != nil {
		// The events are stored; only a replay of this delivery would be
		// published again, and the version guard skips its events.
		s.logger.Warn("remembering an accepted delivery failed; a replay of it would be published again", "source", name, "error", err)
	}
}

// memoryDeliveries is Deliveries in this process's memory (ServerConfig
// without Deliveries): enough for one replica that is not restarted.
type memoryDeliveries struct {
	mu    sync.Mutex
	byKey map[string]memoryDelivery
	adds  int
}

type memoryDelivery struct {
	digest string
	until  time.Time
}

func (m *memoryDeliveries) SeenDelivery(_ context.Context, source, id string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.byKey[source+"\x00"+id]
	if !ok || time.Now().After(d.until) {
		return "", false, nil
	}
	return d.digest, true, nil
}

func (m *memoryDeliveries) RememberDelivery(_ context.Context, source, id, digest string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byKey == nil {
		m.byKey = map[string]memoryDelivery{}
	}
	m.byKey[source+"\x00"+id] = memoryDelivery{digest: digest, until: until}
	if m.adds++; m.adds%1024 == 0 {
		now := time.Now()
		for k, d := range m.byKey {
			if now.After(d.until) {
				delete(m.byKey, k)
			}
		}
	}
	return nil
}
