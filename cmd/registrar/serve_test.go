package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Credentials of the simulator's account in the serve tests: distinctive,
// so that finding one in the logs cannot be a coincidence.
const (
	testClientID     = "cli-test-client"
	testClientSecret = "cli-test-client-secret-7d1f0c"
	testAPIKey       = "cli-test-api-key-93ab5e"
)

// serveEnv is what `registrar serve` is pointed at: an embedded NATS
// server, a Resamania simulator, and the environment its configuration
// expands.
type serveEnv struct {
	natsURL string
	nc      *nats.Conn
	sims    *simulators.Set
	account resamania.SimAccount
	dir     string
}

func newServeEnv(t *testing.T) *serveEnv {
	t.Helper()
	ns := startNATS(t)
	sc := resamania.DefaultSimConfig()
	sc.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	sc.Accounts[0].ClientID = testClientID
	sc.Accounts[0].ClientSecret = testClientSecret
	sc.Accounts[0].APIKey = testAPIKey
	sims, err := simulators.Start(simulators.Config{Resamania: &sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	t.Setenv("RESAMANIA_CLIENT_ID", testClientID)
	t.Setenv("RESAMANIA_CLIENT_SECRET", testClientSecret)
	t.Setenv("RESAMANIA_API_KEY", testAPIKey)
	t.Setenv("REGISTRAR_CONFIG", "")
	t.Setenv("REGISTRAR_FAULT_KILL_AT", "")
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &serveEnv{natsURL: ns.ClientURL(), nc: nc, sims: sims, account: sc.Accounts[0], dir: t.TempDir()}
}

// config writes a configuration file for `registrar serve` and returns its
// path. extra is appended under the tenant's resamania account.
func (e *serveEnv) config(t *testing.T, adminAddr, extra string) string {
	t.Helper()
	yaml := fmt.Sprintf(`nats:
  url: %s
store:
  dsn: sqlite://%s
admin:
  listen: %s
log:
  level: debug
  format: json
processing:
  retry:
    initialInterval: 10ms
    maxInterval: 100ms
tenants:
  acme:
    resamania:
      baseURL: %s
      clientToken: %s
      clientId: ${RESAMANIA_CLIENT_ID}
      clientSecret: ${RESAMANIA_CLIENT_SECRET}
      apiKey: ${RESAMANIA_API_KEY}
%s`, e.natsURL, filepath.ToSlash(filepath.Join(e.dir, "state.db")), adminAddr, e.sims.ResamaniaURL, e.account.ClientToken, extra)
	path := filepath.Join(e.dir, "registrar.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServe(t *testing.T) {
	e := newServeEnv(t)
	admin := "http://" + freeAddr(t)
	path := e.config(t, strings.TrimPrefix(admin, "http://"), "")

	// Subscribe before anything can be emitted.
	evts := make(chan *nats.Msg, 64)
	sub, err := e.nc.ChanSubscribe(events.EventSubjectPrefix+">", evts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	srv := start(t, "serve", "--config", path)
	srv.waitUntil(t, "/readyz to answer 200", 30*time.Second, func() bool {
		code, _ := get(admin + "/readyz")
		return code == http.StatusOK
	})
	if code, _ := get(admin + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}

	id := fmt.Sprintf("cli-serve-%d", time.Now().UnixNano())
	body := fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","clubId":%q,"networkNodeId":%q,
		"contact":{"email":%q,"givenName":"Ada","familyName":"Lovelace","birthDate":"1995-12-10"}}`,
		id, resamania.ClubIRI(e.account.ClientToken, e.account.Clubs[0].ID),
		resamania.NetworkNodeIRI(e.account.ClientToken, e.account.Clubs[0].NetworkNodeID), id+"@example.com")
	msg := nats.NewMsg(events.CommandSubject(events.CmdResamaniaRegister))
	msg.Data = []byte(body)
	msg.Header.Set(nats.MsgIdHdr, id)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	// Two transient vendor failures first, so that the retry and error
	// paths log too, and are checked for secrets below.
	e.sims.Resamania.Faults().FailNext(2, http.StatusServiceUnavailable)
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}

	var seen []string
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case m := <-evts:
			var env events.Envelope
			if err := json.Unmarshal(m.Data, &env); err != nil {
				t.Fatalf("event %s is not JSON: %v", m.Subject, err)
			}
			if env.RegistrationID != id {
				continue
			}
			seen = append(seen, env.Type)
			switch m.Subject {
			case events.EventSubjectPrefix + "completed":
				break wait
			case events.EventSubjectPrefix + "failed", events.EventSubjectPrefix + "rejected":
				t.Fatalf("flow ended with %s: %s", m.Subject, m.Data)
			}
		case <-deadline:
			t.Fatalf("no completed event within 30s; seen %v\nstderr:\n%s", seen, srv.stderr)
		}
	}
	if code, body := get(admin + "/v1/registrations/" + id); code != http.StatusOK || !strings.Contains(body, id) {
		t.Errorf("/v1/registrations/%s: %d %s", id, code, body)
	}
	if code, body := get(admin + "/metrics"); code != http.StatusOK || !strings.Contains(body, "registrar_") {
		t.Errorf("/metrics: %d", code)
	}

	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited with %d\nstderr:\n%s", code, srv.stderr)
	}
	if srv.stdout.String() != "" {
		t.Errorf("serve wrote to stdout: %q", srv.stdout)
	}

	// The logs: JSON lines, at debug level, without any secret.
	logs := srv.stderr.String()
	if os.Getenv("REGISTRAR_TEST_LOGS") != "" {
		t.Logf("serve's logs:\n%s", logs)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
	}
	if lines == 0 {
		t.Error("serve logged nothing")
	}
	if !strings.Contains(logs, `"msg":"registrar running"`) {
		t.Errorf("no \"registrar running\" log line:\n%s", logs)
	}
	for _, s := range []string{testClientSecret, testAPIKey, "access_token"} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain %q:\n%s", s, logs)
		}
	}
}

func TestServeBadConfig(t *testing.T) {
	e := newServeEnv(t)
	tests := []struct {
		name   string
		config func(t *testing.T) string // returns the --config path
		stderr []string
	}{
		{
			name: "unknown key",
			config: func(t *testing.T) string {
				return e.config(t, freeAddr(t), "      clientSecrte: ${RESAMANIA_CLIENT_SECRET}\n")
			},
			stderr: []string{"tenants.acme.resamania.clientSecrte", "unknown key"},
		},
		{
			name: "invalid value",
			config: func(t *testing.T) string {
				return e.config(t, freeAddr(t), "    marta:\n      baseURL: not a url\n      apiKey: x\n")
			},
			stderr: []string{"tenants.acme.marta.baseURL"},
		},
		{
			name: "environment variable not set",
			config: func(t *testing.T) string {
				t.Setenv("RESAMANIA_API_KEY", "")
				os.Unsetenv("RESAMANIA_API_KEY") // t.Setenv restores it
				return e.config(t, freeAddr(t), "")
			},
			stderr: []string{"tenants.acme.resamania.apiKey", "RESAMANIA_API_KEY is not set"},
		},
		{
			name:   "missing file",
			config: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.yaml") },
			stderr: []string{"read config", "nope.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.config(t)
			var stdout, stderr syncBuffer
			code := runContext(t.Context(), []string{"serve", "--config", path}, strings.NewReader(""), &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not contain %q:\n%s", s, &stderr)
				}
			}
			for _, s := range []string{testClientSecret, testAPIKey} {
				if strings.Contains(stderr.String(), s) {
					t.Errorf("stderr shows the secret %q:\n%s", s, &stderr)
				}
			}
		})
	}
}

// TestServeConfigFromEnvironment: without --config, serve reads the file
// named by REGISTRAR_CONFIG.
func TestServeConfigFromEnvironment(t *testing.T) {
	e := newServeEnv(t)
	path := e.config(t, freeAddr(t), "      bogusKey: 1\n")
	t.Setenv("REGISTRAR_CONFIG", path)
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"serve"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "tenants.acme.resamania.bogusKey") {
		t.Errorf("exit %d, stderr:\n%s", code, &stderr)
	}
}

// get returns the status and body of a GET, or 0 when the request failed.
func get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
