package host

import (
	"log/slog"
	"runtime"
	"sync"

	"github.com/loyaltyhub/loyaltyhub/plugins/internal/sockdir"
)

// The hub's socket directory (see package sockdir for the layout and who
// removes what). It is made when the first Plugin starts, after the
// directories of dead hubs are swept, and removed with whatever is left in
// it when the last Plugin closes, so a hub that closes its plugins leaves
// nothing in the temp directory, and one that dies leaves nothing the next
// hub does not sweep.
var sockets struct {
	mu   sync.Mutex
	refs int
	hub  *sockdir.Hub // nil when it could not be made: go-plugin's default then
}

// acquireSockets returns the hub's socket directory, making it if needed;
// release must be called once the Plugin is closed (or failed to start).
func acquireSockets(log *slog.Logger) (hub *sockdir.Hub, release func()) {
	if runtime.GOOS == "windows" { // go-plugin speaks TCP there: no sockets
		return nil, func() {}
	}
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	if sockets.refs == 0 {
		for _, dir := range sockdir.Sweep("") {
			log.Info("removed the plugin socket directory of a hub that is gone", "dir", dir)
		}
		h, err := sockdir.Create("")
		if err != nil {
			log.Warn("plugins keep their sockets in the temp directory", "error", err)
		}
		sockets.hub = h
	}
	sockets.refs++
	hub = sockets.hub
	var once sync.Once
	return hub, func() { once.Do(func() { releaseSockets(log) }) }
}

func releaseSockets(log *slog.Logger) {
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	sockets.refs--
	if sockets.refs > 0 || sockets.hub == nil {
		return
	}
	if err := sockets.hub.Remove(); err != nil {
		log.Warn("removing the plugins' socket directory", "dir", sockets.hub.Dir, "error", err)
	}
	sockets.hub = nil
}
