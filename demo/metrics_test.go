package demo_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/registrar-dev/registrar/demo"
)

// readmeMetrics returns the metric names of the README's metrics
// catalogue (the table under "### Metrics").
func readmeMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "### Metrics")
	if start < 0 {
		t.Fatal("README.md has no ### Metrics section")
	}
	section := text[start+len("### Metrics"):]
	if end := strings.Index(section, "\n### "); end >= 0 {
		section = section[:end]
	}
	name := regexp.MustCompile("`(registrar_[a-z0-9_]+)`")
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `registrar_") {
			continue
		}
		cell := strings.SplitN(line, "|", 3)[1] // the name column
		for _, m := range name.FindAllStringSubmatch(cell, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				names = append(names, m[1])
			}
		}
	}
	sort.Strings(names)
	return names
}

// TestMetricsCatalogue runs the demo on a registry of the test's, then
// checks that the README's catalogue and the registered metrics agree —
// every metric registrar registers is documented, every documented metric
// is registered — and that what the demo exercised has samples.
func TestMetricsCatalogue(t *testing.T) {
	reg := prometheus.NewRegistry()
	res, err := demo.Run(t.Context(), demo.Options{Registry: reg, Timeout: 90 * time.Second})
	if err != nil || !res.OK() {
		t.Fatalf("demo: ok %v, err %v", res.OK(), err)
	}
	documented := readmeMetrics(t)
	if len(documented) < 20 {
		t.Fatalf("README documents only %d metrics: %v", len(documented), documented)
	}

	// Every documented metric is registered: registering another metric
	// of the same name fails.
	for _, name := range documented {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "catalogue probe"})
		if err := reg.Register(probe); err == nil {
			reg.Unregister(probe)
			t.Errorf("README documents %s, which registrar does not register", name)
		}
	}

	// Every registered metric with samples is documented, and the demo's
	// flows gave the ones below samples above zero.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]float64{}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "registrar_") {
			continue
		}
		if !slices.Contains(documented, name) {
			t.Errorf("%s is registered but not in README's metrics table", name)
		}
		for _, m := range f.GetMetric() {
			total[name] += value(m)
		}
	}
	for _, name := range []string{
		"registrar_build_info",
		"registrar_commands_total",
		"registrar_flows_started_total",
		"registrar_flows_ended_total",
		"registrar_step_retries_total",
		"registrar_dead_letters_total",
		"registrar_otp_events_total",
		"registrar_vendor_requests_total",
		"registrar_vendor_request_duration_seconds",
		"registrar_cloudsuite_polls_total",
		"registrar_cloudsuite_users_total",
		"registrar_cloudsuite_last_poll_success_timestamp_seconds",
		"registrar_outbox_forwarded_total",
		"registrar_router_handler_execution_time_seconds",
		"registrar_router_subscriber_messages_received_total",
	} {
		if total[name] <= 0 {
			t.Errorf("%s has no sample above zero after the demo", name)
		}
	}
	// registrar_flows_waiting and the outbox gauges are read from the
	// store at scrape time: the service is stopped here, and the status
	// test checks them on a running one.
}

// value is a sample's value: a histogram's count.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	}
	return 0
}
