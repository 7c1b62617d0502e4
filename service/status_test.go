package service_test

import (
	"strings"
	"testing"
)

// statusCLI runs `registrar status args…` against the service's admin API.
func (e *env) statusCLI(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run(append(append([]string{"status"}, args...), "--admin", e.svc.AdminAddr())...)
	if code != 0 {
		e.t.Fatalf("registrar status %v: exit %d\n%s%s", args, code, out, stderr)
	}
	return out
}

// TestStatusShowsAWaitingCodeAndACompletedFlow: the status CLI (over the
// admin API) shows a flow waiting for a code — what for, until when — and
// a completed flow with its steps and events; --waiting lists the first.
func TestStatusShowsAWaitingCodeAndACompletedFlow(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("st-done", "acme", "status@example.com", ""))
	e.terminal("st-done")
	publish(t, e.js, signupSubject, "", signup("st-wait", "st.wait@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("st-wait", 2) // customer_checked, otp.requested

	out := e.statusCLI("st-wait")
	t.Logf("registrar status st-wait:\n%s", out)
	for _, want := range []string{"registration:  st-wait", "flow:          marta.signup (tenant acme)", "state:         waiting for otp until ",
		"marta.check", "otp.requested", "marta.customer_checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("status of a waiting flow lacks %q", want)
		}
	}
	out = e.statusCLI("st-done")
	t.Logf("registrar status st-done:\n%s", out)
	for _, want := range []string{"state:         completed", "resamania.lookup", "resamania.create", "created", "resamania.contact_created", "completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("status of a completed flow lacks %q", want)
		}
	}
	out = e.statusCLI("--waiting", "otp")
	t.Logf("registrar status --waiting otp:\n%s", out)
	if !strings.Contains(out, "st-wait") || strings.Contains(out, "st-done") || !strings.Contains(out, "1 waiting") {
		t.Errorf("--waiting otp:\n%s", out)
	}
	if v := metricValue(t, e, `registrar_flows_waiting{waiting_for="otp"}`); v != 1 {
		t.Errorf("registrar_flows_waiting{otp} = %v, want 1", v)
	}
	if v := metricValue(t, e, `registrar_otp_events_total{event="requested",flow="marta.signup"}`); v != 1 {
		t.Errorf("otp requested = %v, want 1", v)
	}
}
