package wire

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/loyaltyhub/loyaltyhub/plugins/internal/sockdir"
)

// How long a plugin process gives itself to stop.
const (
	// parentPollInterval is how often a plugin looks at its parent process
	// id (where nothing tells it at once that the hub died).
	parentPollInterval = 500 * time.Millisecond
	// closeTimeout bounds the connector's Close on the way out.
	closeTimeout = 5 * time.Second
	// abandonWait bounds how long a SIGTERM-ed plugin watches whether its
	// hub is dying (see cleanUp).
	abandonWait = time.Second
	// orphanWait bounds the wait for a dead hub's lock to go: a hub of many
	// threads, on a loaded machine, takes a moment to finish dying.
	orphanWait = 5 * time.Second
	// exitDeadline bounds the whole way out, from the stop request to the
	// end of Serve: past it the process exits anyway.
	exitDeadline = closeTimeout + abandonWait + orphanWait + 5*time.Second
)

// lifecycle ends a plugin's Serve when it has no one left to serve, which
// go-plugin alone does not do: go-plugin's Serve returns only when the host
// asks it to (the controller's Shutdown, sent by the host's Kill), it
// swallows SIGINT on purpose, leaves SIGTERM to whatever the program does
// with it (nothing: `loyaltyhub connector serve` catches it for its
// context, so it was ignored), and never notices that its host died.
//
// The lifecycle stops the gRPC server, which makes go-plugin's Serve return
// and remove its socket, when
//   - the process gets SIGTERM or SIGINT (the hub starts each plugin in a
//     process group of its own, so a Ctrl-C in the hub's terminal reaches
//     the hub alone, which then stops its plugins in order);
//   - its parent, the hub, dies (see watchParent; on Linux the hub also
//     asks the kernel for SIGTERM then, through PR_SET_PDEATHSIG);
//   - ctx is done.
type lifecycle struct {
	log *slog.Logger

	mu      sync.Mutex
	srv     *grpc.Server // nil until go-plugin builds it
	stopped bool
	sig     os.Signal // the signal that stopped Serve, if one did

	ppid       int             // the parent at start
	parentGone <-chan struct{} // closed when watchParent sees the parent gone
}

func newLifecycle(log *slog.Logger) *lifecycle {
	return &lifecycle{log: log, ppid: os.Getppid()}
}

// watch starts the watchers; the returned func stops them, once Serve has
// returned.
func (l *lifecycle) watch(ctx context.Context) (stopWatching func()) {
	done := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	keepBrokenPipes()
	l.parentGone = watchParent(done, l.ppid, parentPollInterval)
	go func() {
		select {
		case sig := <-sigs:
			l.mu.Lock()
			l.sig = sig
			l.mu.Unlock()
			l.stop("received " + sig.String())
		case <-l.parentGone:
			l.stop("the hub (the parent process) is gone")
		case <-ctx.Done():
			l.stop("context done: " + context.Cause(ctx).Error())
		case <-done:
		}
		// Keep catching them to the end: Linux sends the parent-death signal
		// again each time the process is handed to a new parent (first
		// another thread of the dying hub, then init), and a second SIGTERM
		// must not kill the process while it cleans up. exitDeadline bounds
		// the way out instead.
		for sig := range sigs {
			l.log.Debug("plugin already stopping", "signal", sig.String())
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// server records the gRPC server go-plugin serves on; a stop requested
// before it existed stops it at once (Serve then returns immediately).
func (l *lifecycle) server(s *grpc.Server) {
	l.mu.Lock()
	l.srv = s
	stopped := l.stopped
	l.mu.Unlock()
	if stopped {
		s.Stop()
	}
}

func (l *lifecycle) stop(why string) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	srv := l.srv
	l.mu.Unlock()
	l.log.Info("plugin stopping", "reason", why, "pid", os.Getpid())
	// Past the deadline the process exits, whatever still runs.
	time.AfterFunc(exitDeadline, func() {
		l.log.Error("plugin did not stop in time; exiting", "reason", why, "deadline", exitDeadline)
		os.Exit(1)
	})
	if srv != nil {
		// Stop, not GracefulStop: the host's stdio stream never ends on its
		// own, and a call in flight is retried by the hub (or has no one to
		// answer to).
		srv.Stop()
	}
}

// orphaned reports whether the parent that started the process is gone.
// It asks again rather than trusting the watcher alone: on Linux the
// kernel's SIGTERM for the parent's death may come first.
func (l *lifecycle) orphaned() bool {
	select {
	case <-l.parentGone:
		return true
	default:
		return parentChanged(l.ppid)
	}
}

// closeConnector closes c, waiting at most closeTimeout.
func closeConnector(c interface{ Close() error }, log *slog.Logger) {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			log.Warn("closing the connector", "error", err)
		}
	case <-time.After(closeTimeout):
		log.Warn("the connector did not close in time; exiting without it", "timeout", closeTimeout)
	}
}

// cleanUp removes what is left of this process in the hub's socket
// directories once go-plugin's Serve has removed the socket itself.
//
// On Linux the parent-death SIGTERM comes as the hub's thread that forked
// this process ends, which may be a moment before the rest of the hub, its
// process id and its directory's lock with it, is gone: so after a SIGTERM
// the process watches for a moment whether it is orphaned, and once it is,
// RemoveAbandoned waits for the dead hub's lock to go (an operator's SIGTERM
// to a plugin of a live hub costs it the moment, and removes nothing of the
// hub's).
func (l *lifecycle) cleanUp() {
	sockdir.RemoveOwn()
	l.mu.Lock()
	sig := l.sig
	l.mu.Unlock()
	if l.orphaned() || (sig == syscall.SIGTERM && runtime.GOOS == "linux" && l.becomesOrphan(abandonWait)) {
		sockdir.RemoveAbandoned(orphanWait)
	}
}

// becomesOrphan watches, for at most wait, whether this process is handed
// to another parent: its hub is dying. A live hub keeps it (an operator's
// SIGTERM), and then its directory is the hub's to remove.
func (l *lifecycle) becomesOrphan(wait time.Duration) bool {
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if l.orphaned() {
			return true
		}
	}
	return l.orphaned()
}
