//go:build unix

package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStoreDir takes an exclusive lock on dir for this process; the kernel
// releases it when the process dies, so a killed hub never leaves it behind.
// The embedded server itself does not stop two servers sharing a directory,
// which would corrupt the store.
func lockStoreDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, "loyaltyhub-bus.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("bus: StoreDir %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("bus: StoreDir %q is in use by another embedded bus (lock %s held): run one hub per StoreDir, or share an external NATS server through URL", dir, path)
		}
		return nil, fmt.Errorf("bus: locking StoreDir %q: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// freeBytes is the space left for an unprivileged writer on dir's file
// system; ok is false when it cannot be read.
func freeBytes(dir string) (n int64, ok bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
