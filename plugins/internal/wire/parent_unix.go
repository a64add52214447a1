//go:build unix

package wire

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// watchParent returns a channel closed once the process's parent, ppid at
// start, is gone, until done is closed. A Unix process whose parent dies is
// handed to init or to the nearest subreaper, so its parent process id
// changes: that is what it looks for, every interval. It is the only sign
// on macOS and the BSDs, and a second line of defence on Linux, where the
// hub also sets the parent-death signal.
func watchParent(done <-chan struct{}, ppid int, interval time.Duration) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if parentChanged(ppid) {
					close(gone)
					return
				}
			}
		}
	}()
	return gone
}

func parentChanged(ppid int) bool { return os.Getppid() != ppid }

// keepBrokenPipes makes a write to a closed standard output or error fail
// with EPIPE instead of killing the process with SIGPIPE, Go's default for
// those two descriptors. When the hub dies, the pipes it read the plugin's
// logs from close; the plugin must still get to close its connector and
// remove its socket, and it logs on the way.
func keepBrokenPipes() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}
