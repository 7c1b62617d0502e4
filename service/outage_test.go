package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// withBreaker sets the circuit breakers' timings.
func withBreaker(openFor, maxOpenFor, maxPark time.Duration) envOption {
	return func(_ *env, c *config.Config, _ *resamania.SimConfig) {
		c.Processing.Breaker.OpenFor = openFor
		c.Processing.Breaker.MaxOpenFor = maxOpenFor
		c.Processing.Breaker.MaxPark = maxPark
	}
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, e *env) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + e.svc.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func circuit(body map[string]any, name string) string {
	d, _ := body["details"].(map[string]any)
	c, _ := d["circuits"].(map[string]any)
	s, _ := c[name].(string)
	return s
}

// TestVendorOutageParksWorkInsteadOfDeadLettering: 500 registrations while
// the Resamania simulator is down for 30 s — less than the retry budget
// plus the parking the breaker allows. The breaker opens, the work is
// parked, the service stays ready, and after the recovery all 500 complete
// with no dead letter and no duplicate contact.
func TestVendorOutageParksWorkInsteadOfDeadLettering(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage")
	}
	e := startEnv(t, withBreaker(500*time.Millisecond, 2*time.Second, 15*time.Minute))
	sim := e.sims.Resamania
	sim.Faults().Set(fault.Config{ErrorRate: 1}) // down: every call answers 503
	const n = 500
	for i := range n {
		id := fmt.Sprintf("outage-%03d", i)
		publish(t, e.js, registerSubject, "", e.register(id, "acme", fmt.Sprintf("outage%03d@example.com", i), ""))
	}
	down := time.Now()
	waitUntil(t, "the circuit to open", 10*time.Second, func() bool {
		return metricValue(t, e, `registrar_circuit_state{tenant="acme",vendor="resamania"}`) == 2
	})
	// Ready all along: a vendor being down does not make registrar
	// unready; /readyz shows the circuit.
	code, body := readyz(t, e)
	if b, err := json.MarshalIndent(body, "", "  "); err == nil {
		t.Logf("GET /readyz during the outage: %d\n%s", code, b)
	}
	if c := circuit(body, "acme/resamania"); code != http.StatusOK || !strings.HasPrefix(c, "open") && c != "half-open" {
		t.Errorf("/readyz during the outage: %d %v", code, body)
	}
	if c := circuit(body, "acme/marta"); c != "closed" {
		t.Errorf("MARTA's circuit during Resamania's outage: %q", c)
	}
	time.Sleep(30*time.Second - time.Since(down))
	sim.Faults().Set(fault.Config{})
	up := time.Now()

	e.events.waitFor(t, "500 completed registrations", 90*time.Second, func(ms []received) bool {
		done := 0
		for _, m := range ms {
			if m.Event.Type == "completed" && strings.HasPrefix(m.Event.RegistrationID, "outage-") {
				done++
			}
		}
		return done >= n
	})
	t.Logf("all %d completed %s after the recovery", n, time.Since(up).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	terminal := map[string]int{}
	for _, m := range e.events.all() {
		if isTerminal(m.Event.Type) {
			terminal[m.Event.RegistrationID]++
			if m.Event.Type != "completed" {
				t.Errorf("%s ended %s", m.Event.RegistrationID, m.Data)
			}
		}
	}
	for id, k := range terminal {
		if k != 1 {
			t.Errorf("%s has %d terminal events", id, k)
		}
	}
	if d := len(e.dlq.all()); d != 0 {
		t.Errorf("dead letters = %d, want 0", d)
	}
	if created := e.contactCreations(); created != n {
		t.Errorf("contacts created = %d, want %d (no duplicate)", created, n)
	}
	emails := map[string]int{}
	for _, c := range sim.Contacts(e.account.ClientToken) {
		if strings.HasPrefix(c.Email, "outage") {
			emails[c.Email]++
		}
	}
	for em, k := range emails {
		if k != 1 {
			t.Errorf("%s has %d contacts", em, k)
		}
	}
	if parked := metricValue(t, e, `registrar_messages_parked_total{vendor="resamania"}`); parked == 0 {
		t.Error("no message was parked")
	}
	if st := metricValue(t, e, `registrar_circuit_state{tenant="acme",vendor="resamania"}`); st != 0 {
		t.Errorf("circuit state after the recovery = %v, want 0 (closed)", st)
	}
}
