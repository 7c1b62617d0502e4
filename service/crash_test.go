package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/transport"
)

// TestMain lets the test binary act as `registrar serve` for the crash
// tests: with REGISTRAR_TEST_CHILD=serve it runs the service from
// REGISTRAR_CONFIG until SIGTERM (or until the fault hook kills it).
func TestMain(m *testing.M) {
	if os.Getenv("REGISTRAR_TEST_CHILD") == "serve" {
		os.Exit(childServe())
	}
	os.Exit(m.Run())
}

func childServe() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(os.Getenv("REGISTRAR_CONFIG"), os.LookupEnv)
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	var hook func(string, []outbox.Record)
	if p := os.Getenv("REGISTRAR_FAULT_KILL_AT"); p != "" {
		hook = service.KillAt(p)
	}
	svc, err := service.New(ctx, service.Options{Config: cfg, Logger: log, FaultHook: hook})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// TestCrashAroundOutboxPublishLosesAndDuplicatesNothing kills a real
// registrar process with SIGKILL right after the store committed a step's
// events and before the forwarder published them, and right after it
// published them and before it deleted them; a restarted process must emit
// every event exactly once and the vendor must see one creation.
func TestCrashAroundOutboxPublishLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, point := range []string{outbox.FaultBeforePublish, outbox.FaultAfterPublish} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			ns, err := transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
			sc := simConfig()
			sims, err := simulators.Start(simulators.Config{Resamania: &sc})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sims.Close)
			acct := sc.Accounts[0]
			cfgPath := filepath.Join(dir, "registrar.yaml")
			yaml := fmt.Sprintf(`nats:
  url: %s
store:
  dsn: sqlite://%s
admin:
  listen: 127.0.0.1:0
processing:
  ackWait: 10s
  retry:
    initialInterval: 20ms
    maxElapsedTime: 2s
tenants:
  acme:
    resamania:
      baseURL: %s
      clientToken: %s
      clientId: %s
      clientSecret: ${TEST_RESAMANIA_SECRET}
      apiKey: ${TEST_RESAMANIA_API_KEY}
`, ns.ClientURL(), filepath.Join(dir, "state.db"), sims.ResamaniaURL, acct.ClientToken, acct.ClientID)
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			child := func(faultAt string) *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "REGISTRAR_TEST_CHILD=serve", "REGISTRAR_CONFIG="+cfgPath,
					"TEST_RESAMANIA_SECRET="+acct.ClientSecret, "TEST_RESAMANIA_API_KEY="+acct.APIKey,
					"REGISTRAR_FAULT_KILL_AT="+faultAt)
				cmd.Stderr = &prefixWriter{t: t, prefix: "child: "}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}

			first := child(point)
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			// The child creates the streams; wait for the command stream.
			waitStream(t, js, "REGISTRATION_COMMANDS")
			body := fmt.Sprintf(`{"registrationId":"reg-crash","tenant":"acme","clubId":"/%[1]s/clubs/%[2]d","networkNodeId":"/%[1]s/network_nodes/%[3]d",
				"contact":{"email":"crash@example.com","givenName":"Ada","familyName":"Lovelace","birthDate":"1995-12-10"}}`,
				acct.ClientToken, acct.Clubs[0].ID, acct.Clubs[0].NetworkNodeID)
			publish(t, js, registerSubject, "cmd-crash", []byte(body))

			waitKilled(t, first, 30*time.Second)
			events := collect(t, js, "REGISTRATION_EVENTS")
			if point == outbox.FaultBeforePublish {
				time.Sleep(200 * time.Millisecond)
				if n := len(events.of("reg-crash")); n != 0 {
					t.Fatalf("%d events published before the crash point", n)
				}
			}

			second := child("")
			t.Cleanup(func() {
				_ = second.Process.Signal(syscall.SIGTERM)
				_ = second.Wait()
			})
			events.waitFor(t, "completed after restart", 30*time.Second, func([]received) bool {
				return countTypes(events.of("reg-crash"))["completed"] == 1
			})
			// A later registration's terminal event shows the restarted
			// forwarder has gone past every older outbox row.
			publish(t, js, registerSubject, "cmd-after", []byte(strings.ReplaceAll(strings.ReplaceAll(body, "reg-crash", "reg-after"), "crash@", "after@")))
			events.waitFor(t, "the next registration", 30*time.Second, func([]received) bool {
				return countTypes(events.of("reg-after"))["completed"] == 1
			})
			got := countTypes(events.of("reg-crash"))
			if got["resamania.contact_created"] != 1 || got["completed"] != 1 || len(events.of("reg-crash")) != 2 {
				t.Errorf("events of reg-crash = %v, want one contact_created and one completed", got)
			}
			if creations := sims.Resamania.CountResponses("POST", "/contacts", 201); creations != 2 { // reg-crash and reg-after
				t.Errorf("contacts created = %d, want 2", creations)
			}
		})
	}
}

func countTypes(rs []received) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Event.Type]++
	}
	return m
}

func waitStream(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := js.Stream(t.Context(), name); err == nil {
			return
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not created in 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitKilled(t *testing.T, cmd *exec.Cmd, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("child exited without being killed: %v", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want SIGKILL at the fault point", err)
		}
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		t.Fatal("child did not reach the fault point")
	}
}

// prefixWriter copies a child's stderr into the test log.
type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(p), nil
}
