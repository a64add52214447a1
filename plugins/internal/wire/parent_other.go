//go:build !unix && !windows

package wire

import "time"

// watchParent never fires where the platform gives no way to watch the
// parent.
func watchParent(<-chan struct{}, int, time.Duration) <-chan struct{} { return nil }

func parentChanged(int) bool { return false }

func keepBrokenPipes() {}
