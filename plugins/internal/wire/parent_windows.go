//go:build windows

package wire

import (
	"os"
	"time"
)

// watchParent returns a channel closed once the process's parent, ppid at
// start, has exited. Windows keeps a dead parent's id, so the plugin waits
// on the parent's process handle instead.
func watchParent(done <-chan struct{}, ppid int, _ time.Duration) <-chan struct{} {
	gone := make(chan struct{})
	p, err := os.FindProcess(ppid)
	if err != nil { // already gone
		close(gone)
		return gone
	}
	go func() {
		_, _ = p.Wait()
		close(gone)
	}()
	return gone
}

// parentChanged is false: watchParent is the only sign on Windows.
func parentChanged(int) bool { return false }

func keepBrokenPipes() {}
