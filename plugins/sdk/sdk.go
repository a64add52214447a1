// Package sdk is the one package a vendor imports to build a loyaltyhub
// connector plugin. The vendor implements Connector (and Writer, Reader,
// SchemaDescriber for what the connector can do) and calls Serve from main;
// the SDK speaks go-plugin and gRPC to the hub. See README.md beside this
// file for the step-by-step guide.
//
// The types are aliases of the hub's connectors package, not copies: that
// package is the contract itself and imports nothing but the standard
// library, so a vendor pulls in no hub code with it, a built-in connector and
// a vendor plugin are the very same Go types, and the contract cannot drift
// between a mirror and the original. A vendor never needs to import
// connectors directly.
package sdk

import (
	"context"
	"log/slog"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

// ProtocolVersion is the connector protocol version this SDK speaks.
const ProtocolVersion = wire.ProtocolVersion

// The contract (see the connectors package for every field's meaning).
type (
	// Connector is what every plugin implements: Describe, Configure, Check, Close.
	Connector = connectors.Connector
	// Writer is implemented by a connector that writes batches.
	Writer = connectors.Writer
	// Reader is implemented by a connector that can be polled for changes.
	Reader = connectors.Reader
	// SchemaDescriber is implemented by a connector that describes its objects.
	SchemaDescriber = connectors.SchemaDescriber
	// RecordGetter is implemented by a connector that reads single records
	// by external id (for `loyaltyhub mapping preview`).
	RecordGetter = connectors.RecordGetter

	Description   = connectors.Description
	Operation     = connectors.Operation
	Record        = connectors.Record
	WriteRequest  = connectors.WriteRequest
	WriteResponse = connectors.WriteResponse
	Result        = connectors.Result
	Status        = connectors.Status
	ReadRequest   = connectors.ReadRequest
	ReadResponse  = connectors.ReadResponse
	Change        = connectors.Change
	ObjectSchema  = connectors.ObjectSchema
	FieldSchema   = connectors.FieldSchema
	// Error is an error with a Kind; build it with E.
	Error = connectors.Error
	// Kind classifies an error: Transient, Permanent, Auth or Other.
	Kind = connectors.Kind
)

// Operations.
const (
	Upsert = connectors.Upsert
	Insert = connectors.Insert
	Update = connectors.Update
	Delete = connectors.Delete
)

// Record outcomes.
const (
	StatusApplied   = connectors.StatusApplied
	StatusRetryable = connectors.StatusRetryable
	StatusPermanent = connectors.StatusPermanent
)

// Error kinds.
const (
	Other     = connectors.Other
	Transient = connectors.Transient
	Permanent = connectors.Permanent
	Auth      = connectors.Auth
)

// E builds an error of a kind: return sdk.E("geooffers.Configure",
// sdk.Permanent, fmt.Errorf("base_url is required")).
func E(op string, kind Kind, err error) error { return connectors.E(op, kind, err) }

// Logger returns the logger a plugin should use. Its lines reach the hub's
// log at their level, under the plugin's name. Anything printed to standard
// output or standard error after Serve starts reaches the hub's log too, at
// info and warn level.
func Logger() *slog.Logger { return wire.PluginLogger(slog.LevelDebug) }

// Option changes how Serve runs.
type Option func(*serveConfig)

type serveConfig struct {
	logger *slog.Logger
}

// WithLogger sets the logger that the SDK itself logs to (panics in the
// connector, for one); the default is Logger().
func WithLogger(l *slog.Logger) Option { return func(c *serveConfig) { c.logger = l } }

// Serve serves c to the hub that started this process and returns, after
// calling c.Close, when the hub stops the plugin, when the process gets
// SIGTERM or SIGINT, or when the hub dies (the process's parent is gone).
// Call it from main and return. Close gets 5 seconds; the process never
// outlives its hub, and leaves no socket behind.
//
// Started by hand (not by a hub), Serve prints a note and exits with status 1.
//
// What the SDK does for you: it rejects a config that is not a JSON object
// before Configure sees it, answers "not supported" for Write, Read and
// DescribeObject when c does not implement Writer, Reader or SchemaDescriber
// (and UNIMPLEMENTED for GetRecord when it implements no RecordGetter),
// turns a panic in c into an error of kind Other, and fails a Write whose
// answer has not exactly one Result per record.
func Serve(c Connector, opts ...Option) {
	conf := serveConfig{}
	for _, o := range opts {
		o(&conf)
	}
	if conf.logger == nil {
		conf.logger = Logger()
	}
	wire.Serve(context.Background(), c, conf.logger)
}
