package bench

import (
	"testing"
	"time"
)

// TestRunCompletesEveryRegistrationOnce runs a small measurement (no
// figures are asserted: timing belongs to the benchmark) and checks the
// harness itself: every registration ends once, nothing is redelivered or
// dead-lettered, one contact per registration.
func TestRunCompletesEveryRegistrationOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service")
	}
	rep, err := Run(t.Context(), Options{N: 200, VendorLatency: time.Millisecond, InFlight: 32, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed != 200 || rep.ContactsCreated != 200 || rep.DeadLetters != 0 || rep.Redelivered != 0 {
		t.Errorf("report: %s", rep)
	}
	if rep.FlowsPerSecond <= 0 || rep.P50 <= 0 || rep.P99 < rep.P50 || rep.Max < rep.P99 {
		t.Errorf("incoherent figures: %s", rep)
	}
}
