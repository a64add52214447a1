//go:build !unix && !windows

package host

import "syscall"

// childAttrs leaves the child's attributes alone.
func childAttrs() *syscall.SysProcAttr { return nil }

// forkOnOwnThread is only needed for Linux's per-thread parent-death signal.
const forkOnOwnThread = false
