package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchPrintsTheFiguresAndTheBaseline runs a small bench (no figure is
// asserted: timing belongs to the benchmark, not to a test) and checks the
// report is whole and coherent.
func TestBenchPrintsTheFiguresAndTheBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"bench", "--n", "100", "--in-flight", "32", "--json"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	var r struct {
		Completed, DeadLetters, Redelivered, DuplicateEffects int
		FlowsPerSecond, BaselineMsgsPerSecond, BaselineRatio  float64
		LatencySeconds                                        map[string]float64
		CPUSeconds                                            float64
		PeakRSSBytes                                          int64
	}
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("%v: %s", err, &stdout)
	}
	if r.Completed != 100 || r.DeadLetters != 0 || r.Redelivered != 0 || r.DuplicateEffects != 0 {
		t.Errorf("report: %s", &stdout)
	}
	if r.FlowsPerSecond <= 0 || r.BaselineMsgsPerSecond <= 0 || r.BaselineRatio <= 0 || r.LatencySeconds["p99"] < r.LatencySeconds["p50"] ||
		r.CPUSeconds <= 0 || r.PeakRSSBytes <= 0 {
		t.Errorf("incoherent figures: %s", &stdout)
	}
	if !strings.Contains(stderr.String(), "100/100") {
		t.Errorf("no progress bar on stderr: %q", &stderr)
	}
}

// TestBenchOpenLoop publishes at a rate while the service runs.
func TestBenchOpenLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"bench", "--n", "100", "--rate", "200", "--no-baseline"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	for _, want := range []string{"open loop at 200/s", "registrations                      100 (completed 100)", "added by registrar p50 / p99"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &stdout)
		}
	}
}

// TestBenchWaitingOTP leaves the sign-ups waiting for their codes and
// reports them.
func TestBenchWaitingOTP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"bench", "--n", "50", "--waiting-otp", "--no-baseline", "--json"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	var r struct {
		Completed, WaitingForCode int
		HeapInUseBytes            int64
	}
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("%v: %s", err, &stdout)
	}
	if r.Completed != 50 || r.WaitingForCode != 50 || r.HeapInUseBytes <= 0 {
		t.Errorf("report: %s", &stdout)
	}
}
