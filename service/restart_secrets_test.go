package service_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/vendors/marta"
)

// TestRestartNeitherLosesNorReprocesses stops the service between two
// registrations and starts it again on the same NATS store and database:
// the durable consumers keep their ack floor, so the first registration is
// not processed again, and the second one is processed.
func TestRestartNeitherLosesNorReprocesses(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("reg-before", "acme", "before@example.com", ""))
	e.terminal("reg-before")

	e.restart()
	publish(t, e.js, registerSubject, "", e.register("reg-after-restart", "acme", "after@example.com", ""))
	e.terminal("reg-after-restart")
	time.Sleep(300 * time.Millisecond) // room for a reprocessed flow to show

	if got := countTypes(e.events.of("reg-before")); got["completed"] != 1 || got["resamania.contact_created"] != 1 {
		t.Errorf("events of the first registration after restart = %v, want each once", got)
	}
	if n := e.contactCreations(); n != 2 {
		t.Errorf("contacts created = %d, want 2", n)
	}
	if got := e.sims.Resamania.CountRequests("GET", "/contacts"); got != 2 {
		t.Errorf("look-ups = %d, want 2 (one per registration: nothing reprocessed)", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
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

// TestSecretsStayOutOfLogsEventsMetricsAndDeadLetters runs every outcome
// (created, found, failed, rejected, retried, dead-lettered) with debug logs
// captured, then scans the logs, events, dead letters, /metrics and the
// status API for the vendor credentials and tokens.
func TestSecretsStayOutOfLogsEventsMetricsAndDeadLetters(t *testing.T) {
	var logs syncBuffer
	e := startEnv(t, withLogs(&logs), withRetryBudget(200*time.Millisecond))
	publish(t, e.js, registerSubject, "", e.register("reg-s1", "acme", "s1@example.com", ""))
	publish(t, e.js, registerSubject, "", e.register("reg-s2", "strict", "s2@example.com", ""))
	publish(t, e.js, registerSubject, "", []byte(`{"registrationId":"reg-s3","tenant":"acme"}`))
	e.terminal("reg-s1")
	e.terminal("reg-s2")
	e.terminal("reg-s3")
	e.sims.Resamania.Faults().FailNext(2, 503)
	publish(t, e.js, registerSubject, "", e.register("reg-s4", "acme", "s4@example.com", ""))
	e.terminal("reg-s4")
	// A loyalty sign-up: its password and code must stay out of sight too.
	publish(t, e.js, signupSubject, "", signup("reg-s6", "s6@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("reg-s6", 2)
	martaCode := e.martaCode("s6@example.com")
	e.submit("reg-s6", wrong(martaCode))
	e.waitEvents("reg-s6", 3)
	e.submit("reg-s6", martaCode)
	e.terminal("reg-s6")
	e.sims.Resamania.Faults().FailNext(1_000_000, 429)
	publish(t, e.js, registerSubject, "", e.register("reg-s5", "acme", "s5@example.com", ""))
	e.dlq.waitFor(t, "the dead letter of reg-s5", 20*time.Second, func(ms []received) bool {
		return slices.ContainsFunc(ms, func(r received) bool { return r.Header.Get(handlers.HeaderRegistrationID) == "reg-s5" })
	})
	e.sims.Resamania.Faults().FailNext(0, 0)

	var corpus strings.Builder
	corpus.WriteString(logs.String())
	for _, c := range []*collector{e.events, e.dlq} {
		for _, m := range c.all() {
			corpus.Write(m.Data)
			for k, vs := range m.Header {
				corpus.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
			}
		}
	}
	for _, path := range []string{"/metrics", "/v1/registrations/reg-s1", "/v1/registrations/reg-s5", "/v1/registrations/reg-s6"} {
		resp, err := http.Get("http://" + e.svc.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		corpus.Write(b)
	}
	text := corpus.String()
	if !strings.Contains(text, "reg-s5") || !strings.Contains(logs.String(), "dead-lettered") {
		t.Fatal("the corpus does not hold what the test produced")
	}
	secrets := map[string]string{"MARTA password": martaPassword, "MARTA code": martaCode, "MARTA API key": marta.DemoAPIKey}
	for _, a := range []struct{ name, id, secret, key string }{
		{"acme", e.account.ClientID, e.account.ClientSecret, e.account.APIKey},
		{"strict", e.strict.ClientID, e.strict.ClientSecret, e.strict.APIKey},
	} {
		secrets[a.name+" client secret"] = a.secret
		secrets[a.name+" API key"] = a.key
	}
	for name, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the %s appears in logs, events, dead letters, metrics or status", name)
		}
	}
	for _, marker := range []string{`"access_token":`, `"refresh_token":`, "access_token=", "refresh_token=", "Bearer "} {
		if strings.Contains(text, marker) {
			t.Errorf("%q appears in logs, events, dead letters, metrics or status", marker)
		}
	}
}
