package wire

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/pb"
)

// GRPCPlugin is the go-plugin glue: on the plugin side it registers the
// server shim around Impl, on the host side it hands out a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the connector served (plugin side only).
	Impl connectors.Connector
	// Logger receives the shim's own logs (plugin side only).
	Logger *slog.Logger
}

// GRPCServer registers the Connector service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterConnectorServer(s, &server{impl: p.Impl, log: p.Logger})
	return nil
}

// GRPCClient returns a *Client over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(pb.NewConnectorClient(conn), "plugin"), nil
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// stderr is the process's real standard error, kept before go-plugin's Serve
// replaces os.Stderr with a pipe: the host reads log lines from it.
var stderr io.Writer = os.Stderr

// hclogTime is the timestamp layout go-plugin's host parses in log lines.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

// PluginLogger returns a logger for code running inside a plugin. It writes
// JSON lines in go-plugin's log format to the real standard error, so the
// host logs each line at its level, under the plugin's name.
func PluginLogger(level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTime))
			case slog.LevelKey:
				lvl, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", hclogLevelName(lvl))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

func hclogLevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// Serve serves impl as a connector plugin until the host stops it, the
// process gets SIGTERM or SIGINT, its parent (the hub) dies or ctx is done;
// then it closes impl (waiting at most closeTimeout) and removes what is
// left of the process's socket, and returns: the caller returns from main.
// It exits the process with status 1 when the binary was not started by a
// hub. logger may be nil (PluginLogger at info level).
func Serve(ctx context.Context, impl connectors.Connector, logger *slog.Logger) {
	if logger == nil {
		logger = PluginLogger(slog.LevelInfo)
	}
	life := newLifecycle(logger)
	stopWatching := life.watch(ctx)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl, Logger: logger}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
			s := plugin.DefaultGRPCServer(opts)
			life.server(s)
			return s
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "go-plugin", Level: hclog.Info, Output: stderr, JSONFormat: true, TimeFormat: hclogTime,
		}),
	})
	stopWatching()
	closeConnector(impl, logger)
	life.cleanUp()
}
