package main

// Orphaned connectors: the real hub binary's `connector serve` children must
// not outlive it, must stop on SIGTERM and SIGINT, and must leave no sockets
// behind. The tests point TMPDIR, where the hub and its children keep their
// sockets, at a directory of their own and look at what is left in it.

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

// procStat returns the state and parent of process pid from /proc; ok is
// false when the process does not exist.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// exited reports whether pid is gone or a zombie (nobody may reap an orphan
// in a container).
func exited(pid int) bool {
	state, _, ok := procStat(pid)
	return !ok || state == "Z" || state == "X"
}

// connectorChildren lists the `connector serve` processes whose parent is pid.
func connectorChildren(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(child); !ok || ppid != pid || exited(child) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), "connector\x00serve\x00") {
			out = append(out, child)
		}
	}
	return out
}

// tempLeftovers lists everything under dir, sockets marked "(socket)".
func tempLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.Type()&fs.ModeSocket != 0 {
			rel += " (socket)"
		}
		out = append(out, rel)
		return nil
	}))
	return out
}

// ownTempDir makes TMPDIR a fresh directory for the rest of the test (the
// hub and its children inherit it) and returns it. Its path is short, unlike
// t.TempDir's, which holds the test's name: a Unix socket's path must fit in
// about 100 bytes, and the host falls back to the bare TMPDIR otherwise.
func ownTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lh")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
	return dir
}

func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("finds the hub's children through /proc, which %s does not have", runtime.GOOS)
	}
}

// TestHubKilledLeavesNoConnectorBehind: SIGKILL the hub (it runs no code),
// and within a few seconds none of its `connector serve` children runs and
// nothing of theirs (sockets, socket directories) is left in TMPDIR.
func TestHubKilledLeavesNoConnectorBehind(t *testing.T) {
	needProc(t)
	o := startOrg(t)
	h := newHub(t, o, hubSetup{})
	tmp := ownTempDir(t) // after newHub's own temp dirs, which stay out of it
	h.start()
	hubPID := h.cmd.Process.Pid
	var children []int
	require.Eventually(t, func() bool { children = connectorChildren(t, hubPID); return len(children) > 0 },
		10*time.Second, 50*time.Millisecond, "the hub runs its Salesforce connector as a child")
	for _, pid := range children {
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // should one survive the test
	}
	before := tempLeftovers(t, tmp)
	require.NotEmpty(t, before, "the connector's socket is under TMPDIR")
	t.Logf("hub %d, connector processes %v, in TMPDIR: %v", hubPID, children, before)

	h.stop(syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range children {
		for !exited(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		assert.True(t, exited(pid), "connector process %d still runs 5s after its hub was killed", pid)
	}
	assert.Eventually(t, func() bool { return len(tempLeftovers(t, tmp)) == 0 }, 2*time.Second, 20*time.Millisecond,
		"left in TMPDIR after the hub was killed")
	assert.Empty(t, tempLeftovers(t, tmp))
}

// TestConnectorServeStopsOnSignals: `loyaltyhub connector serve NAME` exits
// within a few seconds of SIGTERM and of SIGINT, removing its socket.
func TestConnectorServeStopsOnSignals(t *testing.T) {
	sum, err := host.FileSHA256(hubBinary)
	require.NoError(t, err)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := ownTempDir(t)
			p, err := host.Start(context.Background(), host.Config{Name: "crm", Path: hubBinary,
				Args: []string{"connector", "serve", "salesforce"}, SHA256: sum, HealthInterval: -1}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			pid := p.PID()
			require.NotZero(t, pid)

			require.NoError(t, syscall.Kill(pid, sig))
			deadline := time.Now().Add(5 * time.Second)
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "connector serve still runs 5s after %v", sig)
			for _, l := range tempLeftovers(t, tmp) {
				assert.NotContains(t, l, "(socket)", "connector serve left its socket behind")
			}
			require.NoError(t, p.Close())
			assert.Empty(t, tempLeftovers(t, tmp), "left in TMPDIR after Close")
		})
	}
}
