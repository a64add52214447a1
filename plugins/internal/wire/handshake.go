// Package wire is the one place where the connector protocol meets Go: the
// go-plugin handshake, the gRPC shims on both sides of the process boundary
// and the conversions between the generated messages and the connectors
// types. The SDK (plugin side) and the host both build on it; neither sees
// the generated code otherwise.
package wire

import (
	plugin "github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the version of the connector protocol that this build
// speaks (package loyaltyhub.connector.v1). go-plugin refuses a plugin that
// announces another version.
const ProtocolVersion = 1

// PluginName is the name under which the connector is dispensed.
const PluginName = "connector"

// MaxMessageBytes bounds one gRPC message either way (64 MiB), far above a
// batch of MaxBatch records.
const MaxMessageBytes = 64 << 20

// Handshake is shared by host and plugin. The magic cookie is not a security
// measure: it only tells a binary that it was started by the hub.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "LOYALTYHUB_CONNECTOR_PLUGIN",
	MagicCookieValue: "5c1f3a0e-loyaltyhub-connector-protocol",
}
