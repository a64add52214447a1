//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sockdir

import "io"

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// lockDir does not lock where flock(2) is missing: Sweep and
// RemoveAbandoned then never find a directory abandoned, and leave it.
func lockDir(string) (io.Closer, error) { return nopCloser{}, nil }

func tryLockDir(string) (io.Closer, bool) { return nil, false }
