package host

import "syscall"

// childAttrs puts the child in a process group of its own and asks the
// kernel to send it SIGTERM when the hub dies (PR_SET_PDEATHSIG), even by
// SIGKILL, when no code of the hub runs. The child's SDK stops on SIGTERM:
// it closes its connector and removes its socket.
//
// The process group: a Ctrl-C in the hub's terminal goes to the terminal's
// foreground process group. Plugins in the hub's group would stop at once
// (they stop on SIGINT), under the hub's in-flight batches; in their own
// group they wait for the hub, which stops them in order on its way out.
//
// The kernel sends the signal when the *thread* that forked the child exits,
// not the process (go.dev/issue/27505), and the Go runtime ends a thread
// when a goroutine locked to it returns without unlocking; any goroutine
// could be scheduled on the forking thread later and do that. So the host
// forks each child from a goroutine locked to its thread, which stays
// locked, and keeps that thread alive, until the child has been reaped
// (startClient, instance.kill).
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// forkOnOwnThread: see childAttrs.
const forkOnOwnThread = true
