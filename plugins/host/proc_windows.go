package host

import "syscall"

// childAttrs starts the child in a process group of its own, which leaves
// the console's Ctrl-C to the hub, which then stops its plugins in order
// (see proc_linux.go). Windows has no parent-death signal: the child's SDK
// waits on its parent's process handle and exits when the hub does.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// forkOnOwnThread is only needed for Linux's per-thread parent-death signal.
const forkOnOwnThread = false
