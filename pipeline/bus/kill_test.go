package bus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
)

// Environment of the child process started by TestKilledProcessLosesNothing.
const (
	childEnv       = "LOYALTYHUB_BUS_TEST_CHILD"
	childStoreEnv  = "LOYALTYHUB_BUS_TEST_STORE"
	childURLEnv    = "LOYALTYHUB_BUS_TEST_URL"
	childStreamEnv = "LOYALTYHUB_BUS_TEST_STREAM"
	childPrefixEnv = "LOYALTYHUB_BUS_TEST_PREFIX"
)

// TestKilledProcessLosesNothing runs a child process that publishes in a loop
// (reporting each Publish that returned) while a consumer acks, kills it with
// SIGKILL (no drain, no server shutdown), and checks from a new process state
// that every reported message is stored and that the consumer lost none.
func TestKilledProcessLosesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg bus.Config) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			childEnv+"=1",
			childStoreEnv+"="+cfg.StoreDir,
			childURLEnv+"="+cfg.URL,
			childStreamEnv+"="+cfg.Stream,
			childPrefixEnv+"="+cfg.SubjectPrefix,
		)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		killed := false
		t.Cleanup(func() {
			if !killed {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})

		watchdog := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		defer watchdog.Stop()
		published, got := 0, map[string]bool{}
		lines := bufio.NewScanner(stdout)
		read := func() {
			line := lines.Text()
			switch {
			case strings.HasPrefix(line, "published "):
				n, err := strconv.Atoi(strings.TrimPrefix(line, "published "))
				require.NoError(t, err)
				published = max(published, n)
			case strings.HasPrefix(line, "got "):
				got[strings.TrimPrefix(line, "got ")] = true
			}
		}
		for lines.Scan() {
			read()
			if published >= 2000 && len(got) >= 200 {
				break
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for lines.Scan() { // what the child wrote before it died
			read()
		}
		_ = cmd.Wait()
		killed = true
		require.Positive(t, published, "child published nothing")
		t.Logf("killed the child after %d published, %d received", published, len(got))

		b := open(t, cfg)
		// Every message whose Publish returned is in the stream.
		_, audit := subscribe(t, b, "audit", 500, "kill.test")
		stored := map[string]bool{}
		for m := range drain(audit, time.Second) {
			stored[m.UUID] = true
			m.Ack()
		}
		for i := range published {
			assert.True(t, stored[fmt.Sprintf("k-%d", i)], "published message k-%d lost", i)
		}
		// The child's consumer lost nothing either: every message it did not
		// get, or got but had not acked, is delivered again.
		_, acker := subscribe(t, b, "acker", 500, "kill.test")
		redelivered := map[string]bool{}
		for m := range drain(acker, 2*time.Second) { // unacked ones come back after AckWait (1s)
			redelivered[m.UUID] = true
			m.Ack()
		}
		for i := range published {
			id := fmt.Sprintf("k-%d", i)
			assert.True(t, got[id] || redelivered[id], "consumer acker lost %s", id)
		}
		waitPending(t, b, "acker", 0, 5*time.Second)
	})
}

// drain yields messages from ch until none arrives for quiet.
func drain(ch <-chan *message.Message, quiet time.Duration) <-chan *message.Message {
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					return
				}
				out <- m
			case <-time.After(quiet):
				return
			}
		}
	}()
	return out
}

// TestKillChild is the child process of TestKilledProcessLosesNothing; it
// does nothing in a normal test run.
func TestKillChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("child process of TestKilledProcessLosesNothing")
	}
	cfg := testConfig()
	cfg.StoreDir = os.Getenv(childStoreEnv)
	cfg.URL = os.Getenv(childURLEnv)
	cfg.Stream = os.Getenv(childStreamEnv)
	cfg.SubjectPrefix = os.Getenv(childPrefixEnv)
	b, err := bus.Open(context.Background(), cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s, err := b.Subscriber("acker", 8)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	ch, err := s.Subscribe(context.Background(), "kill.test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	// Each line is written straight to the pipe (one write, atomic) before
	// the ack, so the parent learns of every message the child may have acked.
	go func() {
		for m := range ch {
			fmt.Fprintln(os.Stdout, "got "+m.UUID)
			m.Ack()
		}
	}()
	for n := 0; ; {
		batch := make([]*message.Message, 10)
		for i := range batch {
			batch[i] = message.NewMessage(fmt.Sprintf("k-%d", n+i), []byte(`{}`))
		}
		if err := b.Publisher().Publish("kill.test", batch...); err != nil {
			fmt.Fprintln(os.Stderr, "child: publish:", err)
			os.Exit(2)
		}
		n += len(batch)
		fmt.Fprintf(os.Stdout, "published %d\n", n)
	}
}
