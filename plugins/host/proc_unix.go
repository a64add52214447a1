//go:build unix && !linux

package host

import "syscall"

// childAttrs puts the child in a process group of its own, so a Ctrl-C in
// the hub's terminal reaches the hub alone, which stops its plugins in
// order (see proc_linux.go). No parent-death signal is set here (FreeBSD
// has one, left out as untested): the child's SDK notices that its parent
// is gone by its parent process id changing.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// forkOnOwnThread is only needed for Linux's per-thread parent-death signal.
const forkOnOwnThread = false
