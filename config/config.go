// Package config loads the hub's one YAML file: strict decoding (an unknown
// key is an error, with a "did you mean"), ${VAR} and ${file:PATH}
// references, defaults, and validation that reports every problem at once as
// FILE:LINE:COL: path.to.key: what is wrong; what would be valid.
//
// Every relative path in the file (data_dir, a mapping file, a SQLite DSN, a
// ${file:...} secret) is taken relative to the directory of the config file,
// and Load makes it absolute.
//
// References, in any scalar value (keys are never expanded), connector
// blocks and inline mappings included:
//
//	${VAR}           the environment variable VAR; unset is an error
//	${VAR:-default}  VAR, or default when VAR is unset or empty
//	${file:PATH}     the content of the file PATH, trailing newlines trimmed
//	$${              a literal ${
//
// A reference expands to text: a typed hub field (an integer, a duration)
// parses that text, and a connector block value becomes the integer, number
// or boolean its schema asks for. Inside a flow collection ({a: b}, [a])
// quote a value that holds a reference: "${VAR}". Values that came from a
// reference are never shown in error messages.
//
// The struct tags drive the loader and the exported JSON Schema alike:
// yaml (the key), default (the value when the key is absent), enum, min and
// max (the valid range), unit, required and desc (the description).
package config

import (
	"encoding/json"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Config is the whole hub configuration, as loaded by Load: defaults applied,
// references expanded, relative paths made absolute, and validated.
// Top-level keys starting with "x-" are ignored: they hold YAML anchors to
// reuse (x-retry: &retry {...}, then retry: *retry).
type Config struct {
	// DataDir is where the embedded bus (DataDir/nats) and the SQLite state
	// store (DataDir/state.db) live. Default "./data", relative to the config
	// file's directory; Load makes it absolute.
	DataDir string `yaml:"data_dir" default:"./data" desc:"Directory for the embedded bus (data_dir/nats) and the SQLite state store (data_dir/state.db); relative to the config file's directory."`
	// Log sets the hub's logging.
	Log Log `yaml:"log" desc:"Logging."`
	// HTTP sets the one HTTP server: webhooks, admin API, health, metrics.
	HTTP HTTP `yaml:"http" desc:"The HTTP server: webhooks, admin API, health and metrics."`
	// Bus sets the durable message bus (NATS JetStream).
	Bus Bus `yaml:"bus" desc:"The durable bus (NATS JetStream)."`
	// Store sets the state store (version guard, cross-reference, DLQ).
	Store Store `yaml:"store" desc:"The state store: version guard, cross-reference, dead letters."`
	// Progress sets the periodic progress lines in the log.
	Progress Progress `yaml:"progress" desc:"Periodic progress lines in the log."`
	// Replica sets how replicas share the syncs: each sync runs on the
	// replica that holds its lease in the state store.
	Replica Replica `yaml:"replica" desc:"How hub replicas share the syncs (a lease per sync in the state store)."`
	// Sources are the webhook sources accepted at POST /v1/events/{source},
	// by name. Names match ^[a-z][a-z0-9_-]*$. Default: none.
	Sources map[string]*Source `yaml:"sources" desc:"Webhook sources accepted at POST /v1/events/{source}, by name."`
	// Connectors are the systems the hub writes to (and reads from), by
	// name. Names match ^[a-z][a-z0-9_-]*$. Default: none.
	Connectors map[string]*Connector `yaml:"connectors" desc:"Connectors (target and source systems), by name."`
	// Syncs are the data flows, each from one source entity topic through a
	// mapping to one connector object, by name. Names match
	// ^[a-z][a-z0-9_-]*$. Default: none.
	Syncs map[string]*Sync `yaml:"syncs" desc:"Syncs: from <source>.<entity> through a mapping to a connector object, by name."`

	// Path is the absolute path of the loaded file. Not read from YAML.
	Path string `yaml:"-"`
}

// Log sets logging.
type Log struct {
	// Level is the lowest level logged: debug, info, warn or error.
	// Default "info".
	Level string `yaml:"level" default:"info" enum:"debug,info,warn,error" desc:"Lowest level logged."`
	// Format is the log line format: text (logfmt-like) or json.
	// Default "text".
	Format string `yaml:"format" default:"text" enum:"text,json" desc:"Log line format."`
}

// HTTP sets the HTTP server.
type HTTP struct {
	// Listen is the address to listen on, host:port (":8080" for every
	// interface). Default "127.0.0.1:8080".
	Listen string `yaml:"listen" default:"127.0.0.1:8080" desc:"Address to listen on, host:port."`
	// MaxBodyBytes is the largest request body accepted, in bytes; a larger
	// ingress body gets 413. Default 1048576 (1 MiB); range 1024 to
	// 1073741824 (1 GiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes" default:"1048576" min:"1024" max:"1073741824" unit:"bytes" desc:"Largest request body accepted; larger ingress bodies get 413."`
	// MaxBatchEvents is the most events accepted in one CloudEvents batch
	// request; a larger batch is refused. Default 1000; range 1 to 100000.
	MaxBatchEvents int `yaml:"max_batch_events" default:"1000" min:"1" max:"100000" unit:"events" desc:"Most events accepted in one CloudEvents batch request."`
	// ShutdownTimeout is how long a graceful shutdown waits for requests
	// in flight. Default 30s; range 1s to 1h.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" default:"30s" min:"1s" max:"1h" desc:"How long a graceful shutdown waits for requests in flight."`
	// AdminToken is a bearer token of the admin API (/v1/syncs,
	// /v1/dead-letters, ...) with the operator role, named "admin" in the
	// audit log; AdminTokens declares more, with roles. With neither, the
	// admin API answers only requests from the loopback interface (as an
	// operator). Default unset.
	AdminToken Secret `yaml:"admin_token" desc:"Bearer token of the admin API, role operator, named admin; unset (and no admin_tokens): loopback requests only."`
	// AdminTokens are named bearer tokens of the admin API, each with a
	// role: read (the GET endpoints only, with RedactFields hidden in the
	// events they show) or operator (everything). Once any token is set,
	// every admin request needs one, loopback included. Default: none.
	AdminTokens []AdminToken `yaml:"admin_tokens" desc:"Named bearer tokens of the admin API, each with a role: read (GET endpoints only, events redacted) or operator (everything)."`
	// RedactFields are the paths, inside an event's data, whose values the
	// read role sees as "[redacted]" in dead letters and latest events:
	// field names joined by dots, applied at every index of the arrays on
	// the way (contacts.email). Default DefaultRedactFields (email,
	// first_name, last_name, phone, birth_date, address); [] redacts
	// nothing.
	RedactFields []string `yaml:"redact_fields" desc:"Paths inside events' data shown as [redacted] to read-role admin tokens (default email, first_name, last_name, phone, birth_date, address; [] for none)."`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s;
	// range 1s to 10m.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" default:"10s" min:"1s" max:"10m" desc:"Longest time to read a request's headers."`
	// ReadTimeout bounds reading a whole request, body included: a stalled
	// or trickled body is cut off after it. Default 30s; range 1s to 1h.
	ReadTimeout time.Duration `yaml:"read_timeout" default:"30s" min:"1s" max:"1h" desc:"Longest time to read a whole request, body included (stalled bodies are cut off)."`
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer. Default 60s; range 1s to 1h.
	WriteTimeout time.Duration `yaml:"write_timeout" default:"60s" min:"1s" max:"1h" desc:"Longest time from the end of a request's headers to the end of its answer."`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Default 120s; range 1s to 1h.
	IdleTimeout time.Duration `yaml:"idle_timeout" default:"120s" min:"1s" max:"1h" desc:"How long an idle keep-alive connection is kept open."`
	// MaxHeaderBytes caps a request's headers. Default 65536 (64 KiB);
	// range 4096 to 1048576.
	MaxHeaderBytes int `yaml:"max_header_bytes" default:"65536" min:"4096" max:"1048576" unit:"bytes" desc:"Largest request headers accepted."`
	// MaxConcurrentIngress is the most event requests served at once;
	// more get 429 with Retry-After, before their bodies are read.
	// Default 64; range 1 to 100000.
	MaxConcurrentIngress int `yaml:"max_concurrent_ingress" default:"64" min:"1" max:"100000" unit:"requests" desc:"Most event requests served at once; more get 429 with Retry-After."`
}

// Bus sets the durable bus.
type Bus struct {
	// URL of an external NATS JetStream server (nats://host:4222; tls://,
	// ws:// and wss:// work too; several URLs separated by commas). Empty
	// means an embedded NATS JetStream server storing under DataDir/nats.
	// Default "". It may carry credentials: Redacted masks its password.
	URL string `yaml:"url" default:"" desc:"External NATS JetStream URL(s), comma separated; empty runs an embedded server under data_dir/nats."`
	// Stream is the JetStream stream name; letters, digits, - and _ only
	// (no dots). Default "LOYALTYHUB".
	Stream string `yaml:"stream" default:"LOYALTYHUB" desc:"JetStream stream name (letters, digits, - and _)."`
	// SubjectPrefix starts every subject: subjects are
	// "<subject_prefix>.<topic>". Dot-separated tokens of letters, digits,
	// - and _. Default "loyaltyhub".
	SubjectPrefix string `yaml:"subject_prefix" default:"loyaltyhub" desc:"Subjects are <subject_prefix>.<topic>."`
	// AckWait is how long the bus waits for a delivered event's outcome
	// before it redelivers the event: after a crash, events that were in
	// flight come back after at most this long. A running hub extends it
	// for events it still holds (retries, slow targets). Default 30s;
	// range 1s to 1h.
	AckWait time.Duration `yaml:"ack_wait" default:"30s" min:"1s" max:"1h" desc:"Redelivery delay for events in flight when a hub stops abruptly."`
	// MaxAge is how long the bus keeps an event, delivered or not: how far
	// back a backfill (and `mapping preview --key`) can reach. Default 168h
	// (7 days); range 1h to 87600h (10 years).
	MaxAge time.Duration `yaml:"max_age" default:"168h" min:"1h" max:"87600h" desc:"How long the bus keeps events: how far back a backfill reaches."`
	// MaxBytes caps the bus's size on disk; once full, new events are
	// refused (ingress answers 503) rather than old ones dropped, until
	// MaxAge frees room. 0 means no cap (not advised: a flood of events then
	// fills the disk). Default 4294967296 (4 GiB, about 4 million 1 KB
	// events); range 0, or 1048576 (1 MiB) and more.
	MaxBytes int64 `yaml:"max_bytes" default:"4294967296" min:"0" unit:"bytes" desc:"Cap on the bus's size on disk; when full, new events are refused (503) until max_age frees room; 0 = no cap (not advised)."`
}

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Store sets the state store.
type Store struct {
	// Driver is sqlite or postgres. Default "sqlite".
	Driver string `yaml:"driver" default:"sqlite" enum:"sqlite,postgres" desc:"State store driver."`
	// DSN locates the store. sqlite: a file path (relative to the config
	// file's directory) or a file: URI; default DataDir/state.db. postgres:
	// a postgres:// URL or key=value string; required. Redacted masks its
	// password.
	DSN string `yaml:"dsn" default:"" desc:"sqlite: file path (default data_dir/state.db); postgres: connection URL or key=value string (required)."`
}

// Progress sets the progress lines.
type Progress struct {
	// Interval between progress lines. 0 disables them. Default 5s; range
	// 0, or 100ms to 1h.
	Interval time.Duration `yaml:"interval" default:"5s" min:"100ms" max:"1h" zero:"disables" desc:"Time between progress lines; 0 disables them."`
}

// Replica sets this hub replica's identity and its syncs' leases.
type Replica struct {
	// ID names this replica in the leases. Default "": the host name and a
	// hash of the data directory, stable across restarts, so a restarted
	// replica gets its syncs back at once. Give each replica its own.
	ID string `yaml:"id" desc:"This replica's name in the leases; default: host name and a hash of data_dir, stable across restarts."`
	// LeaseTTL is how long a sync's lease lasts unless renewed (every
	// third of it): how long syncs wait after their replica vanished
	// before another replica runs them. Default 15s; range 1s to 10m.
	LeaseTTL time.Duration `yaml:"lease_ttl" default:"15s" min:"1s" max:"10m" desc:"How long a sync's lease lasts unless renewed; how long a vanished replica's syncs wait for another."`
}

// Source is one webhook source.
type Source struct {
	// Name is the source's key under sources. Not read from YAML.
	Name string `yaml:"-"`
	// Secrets are the source's signing keys: every request must carry a
	// Standard Webhooks signature (webhook-id, webhook-timestamp and
	// webhook-signature headers) made with one of them. Several keys let a
	// source rotate its key without downtime: add the new one, move the
	// sender to it, remove the old one. A key is "whsec_" followed by
	// base64 (as Standard Webhooks libraries make them) or any other
	// string, used as raw bytes; at least 16 bytes either way. Required
	// unless Insecure. Default: none.
	Secrets []Secret `yaml:"secrets" desc:"Standard Webhooks signing keys (whsec_<base64>, or raw); requests must be signed with one of them. Several allow key rotation."`
	// Tolerance is how far a signature's webhook-timestamp may be from the
	// hub's clock, either way; a delivery id is remembered this long, so a
	// replay inside the window is answered without being published again.
	// Default 5m; range 10s to 1h.
	Tolerance time.Duration `yaml:"tolerance" default:"5m" min:"10s" max:"1h" desc:"How far a signature's timestamp may be from the hub's clock; also how long delivery ids are remembered against replays."`
	// Insecure accepts unsigned requests from anyone who can reach the
	// hub: forged events are then indistinguishable from real ones. Only
	// for demos and tests; the hub warns at start. Exactly one of Secrets
	// and Insecure is required. Default false.
	Insecure bool `yaml:"insecure" default:"false" desc:"Accept unsigned requests (demos and tests only; anyone who can reach the hub can then forge events). Exactly one of secrets and insecure is required."`
	// Pos is where the source is declared. Not read from YAML.
	Pos Position `yaml:"-"`
}

// Connector is one connector instance.
type Connector struct {
	// Name is the connector's key under connectors. Not read from YAML.
	Name string `yaml:"-"`
	// Type is the connector kind: the name of a built-in connector
	// (salesforce) or, later, plugin:<name>. Required.
	Type string `yaml:"type" required:"true" example:"salesforce" desc:"Connector kind: a built-in connector name."`
	// Config is the connector's own block as JSON, references expanded and
	// secrets in clear, for connectors.Connector.Configure. Checked against
	// the connector's schema when Load has WithConnectorSchemas. Default {}.
	Config json.RawMessage `yaml:"config" desc:"The connector's own settings, checked against its schema."`
	// Plugin locates the executable of a vendor connector; required when
	// Type is plugin:<name>, not allowed otherwise.
	Plugin *Plugin `yaml:"plugin" desc:"The vendor plugin's executable (for type plugin:<name>)."`
	// Read makes the hub poll the connector for changes: each change becomes
	// an event of source <connector name>, so syncs can read
	// "<connector name>.<entity>". Default: not polled.
	Read *Read `yaml:"read" desc:"Poll the connector for changes; they enter the hub as events of source <connector name>."`
	// Breaker sets the connector's circuit breaker, shared by the syncs
	// that write to it.
	Breaker Breaker `yaml:"breaker" desc:"The connector's circuit breaker: while open, the syncs writing to it hold their writes (records wait)."`
	// Pos is where the connector is declared. Not read from YAML.
	Pos Position `yaml:"-"`

	// redacted is Config with its secret values replaced.
	redacted json.RawMessage
}

// RedactedConfig returns Config with every secret value replaced by
// "[redacted]": values under keys that name a secret (password, secret,
// token, api_key, private_key, credentials, ...), values the connector's
// schema marks (format: password, writeOnly: true or x-secret: true) and
// values read from ${file:...}.
func (c *Connector) RedactedConfig() json.RawMessage {
	if c.redacted == nil {
		return c.Config
	}
	return c.redacted
}

// Plugin is a vendor connector's executable. Every connector, built-in or
// vendor, runs as a child process of the hub; built-ins need no Plugin block.
type Plugin struct {
	// Path of the executable, relative to the config file's directory.
	// Required.
	Path string `yaml:"path" required:"true" desc:"Path of the plugin executable (relative to this file)."`
	// SHA256 is the executable's lowercase hex SHA-256; the hub refuses to
	// start a binary with another digest. Required; sha256sum prints it.
	SHA256 string `yaml:"sha256" required:"true" desc:"The executable's SHA-256 (hex); another binary is refused."`
	// Args are passed to the executable. Default: none.
	Args []string `yaml:"args" desc:"Arguments for the executable."`
	// Env adds KEY=value entries to the plugin's environment; the plugin
	// does not inherit the hub's. Default: none.
	Env []string `yaml:"env" desc:"KEY=value entries for the plugin's environment (it does not inherit the hub's)."`
	// CallTimeout bounds each call to the plugin. Default 30s; range 1s to 10m.
	CallTimeout time.Duration `yaml:"call_timeout" default:"30s" min:"1s" max:"10m" desc:"Bound on each call to the plugin."`
}

// Breaker sets a connector's circuit breaker.
type Breaker struct {
	// Failures is how many write calls in a row must fail as a whole for a
	// passing reason (5xx, timeout, refused connection) to open it.
	// Default 5; range 1 to 1000.
	Failures int `yaml:"failures" default:"5" min:"1" max:"1000" unit:"calls" desc:"Write calls in a row failing as a whole (5xx, timeout, refused connection) that open the breaker."`
	// OpenFor is how long it stays open before one write goes through as
	// a probe. Default 10s; range 100ms to 10m.
	OpenFor time.Duration `yaml:"open_for" default:"10s" min:"100ms" max:"10m" desc:"How long the breaker stays open before one write probes the target."`
}

// Read sets the polling of a connector.
type Read struct {
	// Objects are the connector's objects to poll (e.g. vouchers). Required.
	Objects []string `yaml:"objects" required:"true" desc:"The connector's objects to poll."`
	// Interval is the wait between polls when the last page was the last
	// one. Default 2s; range 100ms to 1h.
	Interval time.Duration `yaml:"interval" default:"2s" min:"100ms" max:"1h" desc:"Wait between polls once caught up."`
	// PageSize is the most changes asked for per read. Default 100; range 1
	// to 10000.
	PageSize int `yaml:"page_size" default:"100" min:"1" max:"10000" unit:"changes" desc:"Most changes per read."`
}

// Sync is one data flow: events of one source entity, mapped, written to one
// connector object.
type Sync struct {
	// Name is the sync's key under syncs. Not read from YAML.
	Name string `yaml:"-"`
	// From is the topic read, "<source>.<entity>": a source declared under
	// sources and an entity (member, transaction, voucher, segment).
	// Required.
	From string `yaml:"from" required:"true" example:"ledger.member" desc:"Topic read: <source>.<entity>; entity is member, transaction, voucher or segment."`
	// Source is the source part of From. Not read from YAML.
	Source string `yaml:"-"`
	// Entity is the entity part of From. Not read from YAML.
	Entity string `yaml:"-"`
	// To names the connector written to (a key under connectors). Required.
	To string `yaml:"to" required:"true" example:"crm" desc:"The connector written to."`
	// Object is the target object (an sObject name, a data extension key).
	// Required.
	Object string `yaml:"object" required:"true" example:"LoyaltyProgramMember" desc:"Target object: an sObject name, a data extension key."`
	// Mode is the write operation: upsert, insert, update or delete.
	// Default "upsert".
	Mode connectors.Operation `yaml:"mode" default:"upsert" enum:"upsert,insert,update,delete" desc:"Write operation."`
	// Removals is how a removal (a deleted entity, a member leaving a
	// segment) is written: "delete" deletes the target record; "write" maps
	// the removal and writes it with Mode like any change, for targets that
	// keep a flag instead of deleting (Marketing Cloud data extensions).
	// Default "delete".
	Removals string `yaml:"removals" default:"delete" enum:"delete,write" desc:"How a deleted entity or a member leaving a segment is written: delete the target record, or write it through the mapping like any change (for targets that keep a flag, such as Marketing Cloud data extensions)."`
	// ExternalID is the target field holding the source key. Required for
	// upsert; used by delete when the target id is unknown. Default "".
	ExternalID string `yaml:"external_id" example:"Ledger_Member_Id__c" desc:"Target field holding the source key; required for upsert."`
	// Mapping is the field mapping: a file path (relative to the config
	// file's directory) or an inline mapping block. Required.
	Mapping MappingRef `yaml:"mapping" required:"true" example:"mappings/member.yaml" desc:"Field mapping: a file path (relative to this file) or an inline mapping block."`
	// Batch sets how records are grouped into write calls.
	Batch Batch `yaml:"batch" desc:"How records are grouped into write calls."`
	// Retry sets the retries of retryable failures.
	Retry Retry `yaml:"retry" desc:"Retries of retryable failures."`
	// RateLimit is the most write calls per second to the target; 0 means
	// unlimited. Default 0; range 0 to 10000.
	RateLimit float64 `yaml:"rate_limit" default:"0" min:"0" max:"10000" unit:"calls per second" desc:"Most write calls per second to the target; 0 = unlimited."`
	// Inflight is the most unacknowledged events this sync holds. 0 in the
	// file means the default, 2 × Batch.Size, which Load fills in; otherwise
	// at least Batch.Size, at most 100000.
	Inflight int `yaml:"inflight" default:"0" min:"0" max:"100000" unit:"events" desc:"Most unacknowledged events for this sync; 0 = 2 x batch.size."`
	// Pos is where the sync is declared. Not read from YAML.
	Pos Position `yaml:"-"`
}

// Batch sets batching.
type Batch struct {
	// Size is the most records per write call; a batch is flushed when it
	// is full. The hub lowers it to the connector's MaxBatch. Default 200;
	// range 1 to 10000.
	Size int `yaml:"size" default:"200" min:"1" max:"10000" unit:"records" desc:"Most records per write call; capped by the connector's maximum."`
	// Window is the longest a record waits for its batch to fill before the
	// batch is flushed anyway. Default 200ms; range 1ms to 1m.
	Window time.Duration `yaml:"window" default:"200ms" min:"1ms" max:"1m" desc:"Longest a record waits for its batch to fill."`
}

// Retry sets exponential backoff for retryable failures. The wait before
// attempt n+1 is InitialInterval × Multiplier^(n-1), capped at MaxInterval,
// with jitter.
type Retry struct {
	// MaxAttempts is the most attempts per record, the first included; then
	// the record is dead-lettered. Default 10; range 1 to 1000.
	MaxAttempts int `yaml:"max_attempts" default:"10" min:"1" max:"1000" unit:"attempts" desc:"Most attempts per record, the first included."`
	// InitialInterval is the wait before the first retry. Default 500ms;
	// range 1ms to 1h; at most MaxInterval.
	InitialInterval time.Duration `yaml:"initial_interval" default:"500ms" min:"1ms" max:"1h" desc:"Wait before the first retry."`
	// MaxInterval caps the wait between attempts. Default 1m; range 1ms to
	// 24h.
	MaxInterval time.Duration `yaml:"max_interval" default:"1m" min:"1ms" max:"24h" desc:"Longest wait between attempts."`
	// Multiplier grows the wait after each attempt. Default 2; range 1 to 10.
	Multiplier float64 `yaml:"multiplier" default:"2" min:"1" max:"10" desc:"Growth of the wait after each attempt."`
}

// MappingRef is a sync's mapping, not compiled here: exactly one of File
// and Node is set.
type MappingRef struct {
	// File is the absolute path of a mapping file.
	File string
	// Node is an inline mapping block (a YAML mapping node), references
	// already expanded; its Line and Column are positions in SourceFile.
	Node *yaml.Node
	// SourceFile is the config file the reference is written in, as given
	// to Load, for messages.
	SourceFile string
	// Pos is where the mapping value is written in SourceFile.
	Pos Position
}

// Inline reports whether the mapping is written inline in the config.
func (m MappingRef) Inline() bool { return m.Node != nil }

// SyncList returns the syncs sorted by name.
func (c *Config) SyncList() []*Sync { return sortedValues(c.Syncs) }

// ConnectorList returns the connectors sorted by name.
func (c *Config) ConnectorList() []*Connector { return sortedValues(c.Connectors) }

// SourceList returns the sources sorted by name.
func (c *Config) SourceList() []*Source { return sortedValues(c.Sources) }

func sortedValues[T any](m map[string]*T) []*T {
	keys := sortedKeys(m)
	out := make([]*T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
