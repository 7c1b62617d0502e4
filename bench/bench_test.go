package bench

import (
	"testing"
	"time"
)

// BenchmarkResamaniaRegister runs 2,000 registrations (lookup + creation:
// two vendor calls of 50 ms each) through the whole service, from a backlog
// present at start-up, and reports flows/s and latency percentiles. Each
// iteration is one full run: use -benchtime=1x.
func BenchmarkResamaniaRegister(b *testing.B) {
	for b.Loop() {
		rep, err := Run(b.Context(), Options{N: 2000, VendorLatency: 50 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Completed != rep.N || rep.ContactsCreated != rep.N || rep.DeadLetters != 0 {
			b.Fatalf("not every registration completed once: %s", rep)
		}
		b.ReportMetric(rep.FlowsPerSecond, "flows/s")
		b.ReportMetric(float64(rep.P50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(rep.P99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(rep.Redelivered), "redelivered")
		b.Log(rep)
	}
}
