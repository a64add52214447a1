// Command wrongversion is a connector plugin that announces protocol
// version 2, which this hub does not speak: the host must refuse it.
package main

import (
	plugin "github.com/hashicorp/go-plugin"

	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

func main() {
	hs := wire.Handshake
	hs.ProtocolVersion = wire.ProtocolVersion + 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{wire.PluginName: &wire.GRPCPlugin{Impl: fakeconn.New(nil)}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
