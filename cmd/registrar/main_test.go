package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/registrar-dev/registrar/transport"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{name: "help", args: []string{"help"}, code: 0, stdout: "Usage:\n  registrar demo"},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: "registrar publish   --subject SUBJECT"},
		{name: "no command", args: nil, code: 2, stderr: "Usage:"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "publish without subject", args: []string{"publish", "cmd.json"}, code: 2,
			stderr: "usage: registrar publish --subject SUBJECT"},
		{name: "publish without file", args: []string{"publish", "--subject", "registration.cmd.cancel"}, code: 2,
			stderr: "usage: registrar publish --subject SUBJECT"},
		{name: "publish unknown flag", args: []string{"publish", "--bogus"}, code: 2,
			stderr: "flag provided but not defined: -bogus"},
		{name: "publish --help", args: []string{"publish", "--help"}, code: 0, stderr: "-msg-id"},
		{name: "serve unknown flag", args: []string{"serve", "--nope"}, code: 2, stderr: "-nope"},
		{name: "vendorsim bad flag syntax", args: []string{"vendorsim", "---resamania"}, code: 2, stderr: "bad flag syntax"},
		{name: "demo bad flag value", args: []string{"demo", "--timeout", "soon"}, code: 2, stderr: "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runContext(t.Context(), tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.stdout, &stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, &stderr)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that a command running in another goroutine
// may write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started is a command running in the background under a context the test
// cancels.
type started struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// start runs the command in args in a goroutine. The test's cleanup stops
// it if the test did not.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- runContext(ctx, args, strings.NewReader(""), s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(60 * time.Second):
			t.Errorf("%s did not stop within 60s", args[0])
		}
	})
	return s
}

// stop cancels the command's context and returns its exit code.
func (s *started) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("did not stop within 60s\nstderr:\n%s", s.stderr)
		return -1
	}
}

// exited returns the exit code if the command has already returned.
func (s *started) exited() (int, bool) {
	select {
	case code := <-s.done:
		s.done <- code
		return code, true
	default:
		return 0, false
	}
}

// waitUntil polls cond every 20ms until it holds, the command exits, or
// the timeout passes.
func (s *started) waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		if code, ok := s.exited(); ok {
			t.Fatalf("waiting for %s: the command exited with %d\nstdout:\n%s\nstderr:\n%s", what, code, s.stdout, s.stderr)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waiting for %s: timed out after %s\nstdout:\n%s\nstderr:\n%s", what, timeout, s.stdout, s.stderr)
		}
	}
}

// startNATS starts an embedded JetStream server for the test.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for commands that take a listen address and do not report the
// port they got.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
