// Package connectors holds the one contract between the hub and every system it
// talks to: the connector protocol. A connector sees batches of records and
// cursors, never bus messages; the same types cross the plugin process boundary,
// so every type here is plain data that serialises to JSON without loss.
package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Operation says what a write does with each record of a batch.
type Operation string

const (
	// Upsert creates or updates by the external id field named in the request.
	Upsert Operation = "upsert"
	// Insert always creates.
	Insert Operation = "insert"
	// Update changes the record named by Record.TargetID.
	Update Operation = "update"
	// Delete removes the record named by Record.TargetID, or the one whose
	// external id field equals Record.Key when TargetID is empty.
	Delete Operation = "delete"
)

// Valid reports whether op is one of the four operations.
func (op Operation) Valid() bool {
	switch op {
	case Upsert, Insert, Update, Delete:
		return true
	}
	return false
}

// Record is one record of a batch.
type Record struct {
	// Key is the entity id at the source (a ledger member id, say). Results
	// are matched to records by index, Key is there for logs and deletes.
	Key string `json:"key"`
	// TargetID is the record's id in the target when the hub knows it from
	// the cross-reference; empty otherwise.
	TargetID string `json:"target_id,omitempty"`
	// Fields are the mapped field values, JSON-compatible (string, float64,
	// int64, bool, nil, []any, map[string]any). Nil for deletes.
	Fields map[string]any `json:"fields,omitempty"`
}

// WriteRequest is one batch for one target object.
type WriteRequest struct {
	// Object is the target object: an sObject name, a data extension key.
	Object string `json:"object"`
	// Operation applies to every record of the batch.
	Operation Operation `json:"operation"`
	// ExternalIDField is the target field that holds Record.Key; required
	// for Upsert, used by Delete when a record has no TargetID.
	ExternalIDField string `json:"external_id_field,omitempty"`
	// Records, at most the connector's MaxBatch.
	Records []Record `json:"records"`
}

// Status is the outcome class of one record.
type Status int

const (
	// StatusApplied: the target holds the record; Result.TargetID names it.
	StatusApplied Status = iota + 1
	// StatusRetryable: a passing failure (lock, limit, 5xx); try again later.
	StatusRetryable
	// StatusPermanent: the record will never be accepted as it is (bad field,
	// bad picklist value); dead-letter it with the reason.
	StatusPermanent
)

func (s Status) String() string {
	switch s {
	case StatusApplied:
		return "applied"
	case StatusRetryable:
		return "retryable"
	case StatusPermanent:
		return "permanent"
	}
	return "unknown"
}

// Result is the outcome of one record, at the same index as the record.
type Result struct {
	Status Status `json:"status"`
	// TargetID is the id of the record in the target, when StatusApplied.
	TargetID string `json:"target_id,omitempty"`
	// Code is the target's own error code (UNABLE_TO_LOCK_ROW, INVALID_FIELD).
	Code string `json:"code,omitempty"`
	// Message is the target's message, with the fields it names.
	Message string `json:"message,omitempty"`
	// RetryAfter is the wait the target asked for, if it said one.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// WriteResponse carries one Result per record, in order.
type WriteResponse struct {
	Results []Result `json:"results"`
	// Calls is how many API calls the write took (for the records-per-call figure).
	Calls int `json:"calls"`
}

// Description says what a connector is and what it can do.
type Description struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Summary string `json:"summary,omitempty"`
	// MaxBatch is the largest batch Write accepts; the hub never sends more.
	MaxBatch int `json:"max_batch"`
	// Objects the connector can write or read, by name.
	Objects []string `json:"objects,omitempty"`
	// Writes and Reads say which of Objects Write accepts and Read pages
	// through; empty when the connector does not say.
	Writes []string `json:"writes,omitempty"`
	Reads  []string `json:"reads,omitempty"`
	// Entities are the hub entities the connector works with (member,
	// transaction, voucher, segment).
	Entities []string `json:"entities,omitempty"`
	// ConfigSchema is a JSON Schema (OpenAPI 3 subset) of the connector's
	// config block; the config loader checks the block against it.
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	// Keys says how the target compares record keys (the external ids the
	// hub writes): KeysExact (the default) or KeysCaseInsensitive
	// (Salesforce external ids: "ab-1" and "AB-1" are one record). The
	// version guard and the cross-reference compare keys the same way, so
	// that two spellings of one target record are ordered as one key.
	Keys KeyMatch `json:"keys,omitempty"`
}

// KeyMatch is how a target compares two record keys.
type KeyMatch string

const (
	// KeysExact: keys are equal when their bytes are.
	KeysExact KeyMatch = ""
	// KeysCaseInsensitive: keys are equal when they are equal under Unicode
	// simple case folding (strings.EqualFold).
	KeysCaseInsensitive KeyMatch = "case-insensitive"
)

// Fold returns the form of key under which equal keys are identical: key
// itself for KeysExact, a case-folded form for KeysCaseInsensitive, such
// that Fold(a) == Fold(b) exactly when strings.EqualFold(a, b).
func (m KeyMatch) Fold(key string) string {
	if m != KeysCaseInsensitive {
		return key
	}
	return foldCase(key)
}

// Connector is what every connector, built-in or plugin, implements.
// Configure is called once, before anything else but Describe.
type Connector interface {
	Describe(ctx context.Context) (Description, error)
	// Configure takes the connector's config block as JSON (secrets already
	// resolved) and returns an error naming the field when it is invalid.
	Configure(ctx context.Context, config json.RawMessage) error
	// Check proves credentials and connectivity.
	Check(ctx context.Context) error
	Close() error
}

// Writer is a connector that writes batches. Write returns one Result per
// record; a non-nil error means the whole batch failed and no record is known
// to be written, and its Kind (see KindOf) says whether to retry.
type Writer interface {
	Write(ctx context.Context, req WriteRequest) (WriteResponse, error)
}

// FieldSchema describes one field of a target object.
type FieldSchema struct {
	Name  string `json:"name"`
	Label string `json:"label,omitempty"`
	// Type is the target's own type name (string, double, boolean, date,
	// datetime, picklist, reference, id, email, phone, currency, ...).
	Type       string `json:"type"`
	Length     int    `json:"length,omitempty"`
	Createable bool   `json:"createable"`
	Updateable bool   `json:"updateable"`
	Nillable   bool   `json:"nillable"`
	// Required: must be given on create (not nillable, no default).
	Required   bool     `json:"required"`
	ExternalID bool     `json:"external_id"`
	Unique     bool     `json:"unique"`
	Picklist   []string `json:"picklist,omitempty"`
	// ReferenceTo lists the objects a reference field points at.
	ReferenceTo []string `json:"reference_to,omitempty"`
}

// ObjectSchema describes a target object, for checking mappings against it.
type ObjectSchema struct {
	Name   string        `json:"name"`
	Fields []FieldSchema `json:"fields"`
}

// SchemaDescriber is a connector that can describe its objects.
type SchemaDescriber interface {
	DescribeObject(ctx context.Context, object string) (ObjectSchema, error)
}

// RecordGetter is a connector that can read one record of its target by
// external id, so that a tool can show what a write would change (`loyaltyhub
// mapping preview`) without writing. It is optional.
type RecordGetter interface {
	// GetRecord returns the fields of the record of object whose
	// externalIDField equals key ("Id" or "" reads by the target's own id).
	// found is false, with a nil error, when no such record exists; an
	// unknown object or field is an error.
	GetRecord(ctx context.Context, object, externalIDField, key string) (fields map[string]any, found bool, err error)
}

// ErrCannotReadRecords is wrapped by the error GetRecord returns for a
// connector (or plugin) that does not implement RecordGetter.
var ErrCannotReadRecords = errors.New("this connector cannot read records")

// Change is one change read from a source: it becomes one hub event.
type Change struct {
	// ID is the idempotency key of the change (stable across re-reads).
	ID string `json:"id"`
	// Type is a hub event type (loyalty.voucher.upserted).
	Type string `json:"type"`
	// Subject is the entity id.
	Subject string `json:"subject"`
	// Version grows per entity at the source.
	Version int64     `json:"version"`
	Time    time.Time `json:"time"`
	// Data is the entity's full state as a JSON object.
	Data json.RawMessage `json:"data"`
}

// ReadRequest asks for the page of changes after Cursor ("" = the start).
type ReadRequest struct {
	Object string `json:"object"`
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// ReadResponse is one page. Cursor is where the next read starts; the hub
// stores it only after the page's changes are durably on the bus.
type ReadResponse struct {
	Changes []Change `json:"changes"`
	Cursor  string   `json:"cursor"`
	// More is true when another page is ready now (read again at once).
	More bool `json:"more"`
}

// Reader is a connector that can be polled for changes (and backfills).
type Reader interface {
	Read(ctx context.Context, req ReadRequest) (ReadResponse, error)
}
