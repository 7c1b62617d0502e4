package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAfterARegistration checks /metrics serves the service's own
// registry with the metrics the README lists, with samples for what ran.
func TestMetricsAfterARegistration(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("reg-metrics", "acme", "metrics@example.com", ""))
	e.terminal("reg-metrics")

	resp, err := http.Get("http://" + e.svc.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`registrar_commands_total{command="resamania.register",result="started"} 1`,
		`registrar_flows_started_total{flow="resamania.register"} 1`,
		`registrar_flows_ended_total{code="",flow="resamania.register",outcome="completed"} 1`,
		"registrar_outbox_pending ",
		"registrar_outbox_oldest_age_seconds ",
		"registrar_outbox_forwarded_total ",
		"registrar_router_handler_execution_time_seconds_bucket",
		"registrar_router_subscriber_messages_received_total",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "reg-metrics") || strings.Contains(text, "metrics@example.com") {
		t.Error("/metrics carries a registration id or an e-mail in a label")
	}
}
