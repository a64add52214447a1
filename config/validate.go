package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// Entities are the canonical entities a sync can read, in the order
// messages list them.
var Entities = []string{event.EntityMember, event.EntityTransaction, event.EntityVoucher, event.EntitySegment}

var (
	streamRe  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	subjectRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	typeRe    = regexp.MustCompile(`^(plugin:)?[a-z][a-z0-9_-]*$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// IsPluginType reports whether a connector type names a vendor plugin.
func IsPluginType(t string) bool { return strings.HasPrefix(t, "plugin:") }

// validate checks what the field tags cannot say, fills in the defaults
// that depend on other fields and makes paths absolute.
func (l *loader) validate(c *Config) {
	if c.DataDir == "" {
		l.errAt("data_dir", `must not be empty; give a directory (default "./data", relative to the config file)`)
	} else {
		c.DataDir = l.resolve(c.DataDir)
	}
	l.checkListen(c.HTTP.Listen)
	l.checkAdmin(&c.HTTP)
	l.checkBus(&c.Bus)
	l.checkStore(c)

	for _, name := range sortedKeys(c.Sources) {
		l.checkSource(name, c.Sources[name])
	}
	for _, name := range sortedKeys(c.Connectors) {
		conn := c.Connectors[name]
		t := conn.Type
		p := "connectors." + name + ".type"
		if t != "" && !typeRe.MatchString(t) {
			l.errAt(p, "invalid connector type %s; a type is a connector name such as salesforce (%s), or plugin:<name>", l.quote(l.vals[p]), NamePattern)
		}
		typeOK := t != "" && !l.isBad(p) // an invalid type is built in or a plugin by mistake
		switch {
		case typeOK && IsPluginType(t) && conn.Plugin == nil:
			bin := strings.TrimPrefix(t, "plugin:")
			if l.fromRef(p) {
				bin = "<name>"
			}
			l.errAt(p, "type %s needs a plugin block: plugin: {path: ./bin/%s, sha256: <sha256sum of it>}", l.quoteAt(p, t), bin)
		case typeOK && !IsPluginType(t) && conn.Plugin != nil:
			l.errAt("connectors."+name+".plugin", "only plugin:<name> types take a plugin block; %s is built into the hub", l.quoteAt(p, t))
		case conn.Plugin != nil:
			if conn.Plugin.Path != "" {
				conn.Plugin.Path = l.resolve(conn.Plugin.Path)
			}
			sp := "connectors." + name + ".plugin.sha256"
			if sum := conn.Plugin.SHA256; sum != "" && !sha256Re.MatchString(sum) {
				l.errAt(sp, "%s is not a SHA-256 digest: 64 lowercase hex characters, as printed by sha256sum", l.quoteAt(sp, sum))
			}
		}
	}
	for _, name := range sortedKeys(c.Syncs) {
		l.checkSync(c, name, c.Syncs[name])
	}
}

// MinSecretBytes is the shortest signing key a source accepts, in bytes
// (after base64 decoding, for a whsec_ key).
const MinSecretBytes = 16

// checkSource checks a source's signing keys: exactly one of secrets and
// insecure, and every key long enough to resist guessing.
func (l *loader) checkSource(name string, src *Source) {
	base := "sources." + name
	if l.isBad(base + ".secrets") {
		return
	}
	switch {
	case len(src.Secrets) == 0 && !src.Insecure:
		at := base
		if _, ok := l.vals[base+".secrets"]; ok {
			at = base + ".secrets"
		}
		l.errAt(at, "needs its signing keys: secrets: [\"${LEDGER_WEBHOOK_SECRET}\"] (Standard Webhooks, whsec_<base64>); "+
			"or declare insecure: true to accept unsigned events from anyone who can reach the hub (demos and tests only)")
	case len(src.Secrets) > 0 && src.Insecure:
		l.errAt(base+".insecure", "a source with secrets is not insecure; remove insecure: true, or the secrets")
	}
	for i, sec := range src.Secrets {
		p := fmt.Sprintf("%s.secrets[%d]", base, i)
		if _, err := SecretKey(sec); err != nil {
			l.errAt(p, "%v", err)
		}
	}
}

// SecretKey returns the HMAC key of a source secret: the base64 after
// "whsec_" decoded, or the string's bytes. It refuses an empty key, bad
// base64 and keys shorter than MinSecretBytes.
func SecretKey(s Secret) ([]byte, error) {
	v := s.Value()
	var key []byte
	if b64, ok := strings.CutPrefix(v, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("a whsec_ key must be followed by standard base64: %v", err)
		}
	} else {
		key = []byte(v)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("a signing key must hold at least %d bytes (this one holds %d); make one with: echo whsec_$(head -c 32 /dev/urandom | base64)", MinSecretBytes, len(key))
	}
	return key, nil
}

func (l *loader) checkListen(addr string) {
	const p = "http.listen"
	if l.isBad(p) {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.errAt(p, "%s is not host:port; e.g. 127.0.0.1:8080, or :8080 for every interface", l.quoteAt(p, addr))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		l.errAt(p, "port %s is not a number from 0 to 65535", l.quoteAt(p, port))
		return
	}
	if strings.ContainsAny(host, " /") {
		l.errAt(p, "host %s is not a host name or IP address", l.quoteAt(p, host))
	}
}

func (l *loader) checkBus(b *Bus) {
	if b.URL != "" && !l.isBad("bus.url") {
		for _, raw := range strings.Split(b.URL, ",") {
			raw = strings.TrimSpace(raw)
			u, err := url.Parse(raw)
			switch {
			case err != nil || u.Host == "":
				l.errAt("bus.url", "%s is not a NATS URL; e.g. nats://127.0.0.1:4222 (several separated by commas), or empty for the embedded server", l.quoteAt("bus.url", redactURL(raw)))
				return
			case !contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme):
				if l.fromRef("bus.url") {
					l.errAt("bus.url", "unknown URL scheme in %s; valid: nats, tls, ws, wss", hiddenValue)
				} else {
					l.errAt("bus.url", "unknown URL scheme %q in %q; valid: nats, tls, ws, wss", u.Scheme, redactURL(raw))
				}
				return
			}
		}
	}
	if b.Stream != "" && !streamRe.MatchString(b.Stream) {
		l.errAt("bus.stream", "invalid stream name %s; letters, digits, - and _ only (no dots, spaces or wildcards), e.g. LOYALTYHUB", l.quote(l.vals["bus.stream"]))
	} else if b.Stream == "" {
		l.errAt("bus.stream", "must not be empty; e.g. LOYALTYHUB")
	}
	if b.SubjectPrefix != "" && !subjectRe.MatchString(b.SubjectPrefix) {
		l.errAt("bus.subject_prefix", "invalid subject prefix %s; dot-separated tokens of letters, digits, - and _ (no wildcards, no leading or trailing dot), e.g. loyaltyhub", l.quote(l.vals["bus.subject_prefix"]))
	} else if b.SubjectPrefix == "" {
		l.errAt("bus.subject_prefix", "must not be empty; e.g. loyaltyhub")
	}
}

func (l *loader) checkStore(c *Config) {
	s := &c.Store
	switch s.Driver {
	case DriverSQLite:
		switch {
		case s.DSN == "":
			s.DSN = filepath.Join(c.DataDir, "state.db")
		case s.DSN == ":memory:" || strings.HasPrefix(s.DSN, "file:"):
		default:
			s.DSN = l.resolve(s.DSN)
		}
	case DriverPostgres:
		switch {
		case s.DSN == "":
			l.errAt("store.dsn", "missing; the postgres driver needs a DSN, e.g. postgres://user:${PGPASSWORD}@127.0.0.1:5432/loyaltyhub")
		case strings.Contains(s.DSN, "://"):
			u, err := url.Parse(s.DSN)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				l.errAt("store.dsn", "%s is not a PostgreSQL DSN; use postgres://user:password@host:5432/db or host=... user=... dbname=...", l.quoteAt("store.dsn", redactDSN(s.DSN)))
			}
		case !strings.Contains(s.DSN, "="):
			l.errAt("store.dsn", "%s is not a PostgreSQL DSN; use postgres://user:password@host:5432/db or host=... user=... dbname=...", l.quoteAt("store.dsn", redactDSN(s.DSN)))
		}
	}
}

func (l *loader) checkSync(c *Config, name string, s *Sync) {
	p := "syncs." + name
	if s.From != "" && !l.isBad(p+".from") {
		fromNode := l.vals[p+".from"]
		src, ent, ok := strings.Cut(s.From, ".")
		switch {
		case !ok || src == "" || ent == "":
			l.errAt(p+".from", "%s is not <source>.<entity>; e.g. ledger.member (entities: %s)", l.quote(fromNode), list(Entities))
		case c.Sources[src] == nil && (c.Connectors[src] == nil || c.Connectors[src].Read == nil):
			l.errAt(p+".from", "%s", l.unknownAt(p+".from", "source", src, "declared sources (webhook sources, and connectors with a read block)", sourceNames(c)))
		case !contains(Entities, ent):
			l.errAt(p+".from", "%s", l.unknownAt(p+".from", "entity", ent, "valid entities", Entities))
		default:
			s.Source, s.Entity = src, ent
		}
	}
	if s.To != "" && c.Connectors[s.To] == nil {
		l.errAt(p+".to", "%s", l.unknownAt(p+".to", "connector", s.To, "declared connectors", sortedKeys(c.Connectors)))
	}
	if s.Mode == connectors.Upsert && s.ExternalID == "" && !l.isBad(p+".mode") {
		if _, written := l.vals[p+".external_id"]; written {
			l.errAt(p+".external_id", "must not be empty when mode is upsert; name the target's external id field (e.g. external_id: Ledger_Member_Id__c)")
		} else {
			l.errAt(p+".external_id", "missing; mode upsert needs the target's external id field (e.g. external_id: Ledger_Member_Id__c), or set another mode")
		}
	}
	if !l.isBad(p+".batch.size") && !l.isBad(p+".inflight") {
		switch {
		case s.Inflight == 0:
			s.Inflight = 2 * s.Batch.Size
		case s.Inflight < s.Batch.Size:
			size, atLeast := fmt.Sprintf(" (%d)", s.Batch.Size), strconv.Itoa(s.Batch.Size)
			if l.fromRef(p + ".batch.size") {
				size, atLeast = "", "batch.size"
			}
			l.errAt(p+".inflight", "%s is below batch.size%s, so a batch would never fill; valid: 0 (2 × batch.size), or %s to 100000",
				l.showAt(p+".inflight", strconv.Itoa(s.Inflight)), size, atLeast)
		}
	}
	r := s.Retry
	if r.InitialInterval > r.MaxInterval && !l.isBad(p+".retry.initial_interval") && !l.isBad(p+".retry.max_interval") {
		path := p + ".retry.initial_interval"
		if _, ok := l.vals[path]; !ok {
			path = p + ".retry.max_interval"
		}
		l.errAt(path, "initial_interval %s is longer than max_interval %s; valid: initial_interval <= max_interval",
			l.showAt(p+".retry.initial_interval", fmtDuration(r.InitialInterval)), l.showAt(p+".retry.max_interval", fmtDuration(r.MaxInterval)))
	}
}

// sourceNames lists what a sync can read from: webhook sources and polled connectors.
func sourceNames(c *Config) []string {
	names := sortedKeys(c.Sources)
	for _, n := range sortedKeys(c.Connectors) {
		if c.Connectors[n].Read != nil && c.Sources[n] == nil {
			names = append(names, n)
		}
	}
	return names
}
