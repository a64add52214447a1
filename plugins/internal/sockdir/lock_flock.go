//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sockdir

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on dir, held until the closer closes (or
// the process dies: the system releases it then, which is what tells a
// sweeping hub that the directory's owner is gone). It fails when someone
// else holds the lock, and when dir was removed or replaced while it was
// being locked.
func lockDir(dir string) (io.Closer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	locked, err := f.Stat()
	if err == nil {
		var now os.FileInfo
		if now, err = os.Stat(dir); err == nil && !os.SameFile(locked, now) {
			err = errors.New("replaced while being locked")
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tryLockDir takes dir's lock if no one holds it.
func tryLockDir(dir string) (io.Closer, bool) {
	l, err := lockDir(dir)
	return l, err == nil
}
