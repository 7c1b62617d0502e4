package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 2000, "registrations (resamania.register, new people) published as a backlog before the service starts")
	latency := fs.Duration("vendor-latency", 0, "latency the simulator adds to every vendor call")
	inFlight := fs.Int("in-flight", 0, "messages each handler processes at once (default: processing.inFlight's default)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noBaseline := fs.Bool("no-baseline", false, "skip the raw JetStream baseline")
	waitingOTP := fs.Bool("waiting-otp", false, "publish MARTA sign-ups and stop when all wait for their code: what N waiting flows cost (RSS)")
	rate := fs.Float64("rate", 0, "publish at this many registrations per second while the service runs (open loop; default: a backlog before it starts)")
	natsURL := fs.String("nats", "", "a NATS server of yours (default: an embedded one)")
	storeDSN := fs.String("store", "", "a store of yours: postgres://… or sqlite:///path (default: an embedded SQLite database)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registrar bench [--n 2000] [--vendor-latency 0] [--in-flight N] [--rate R] [--nats URL] [--store DSN] [--json]")
		fmt.Fprintln(stderr, "\nRuns everything embedded (NATS JetStream, SQLite, the simulators, the service), drives N registrations")
		fmt.Fprintln(stderr, "and prints throughput, latency percentiles, what registrar adds to the vendor time, redeliveries,")
		fmt.Fprintln(stderr, "dead letters, duplicate effects, CPU and peak RSS, and a raw JetStream baseline on the same server.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n <= 0 || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	progress := func(done, total int) {
		if done%max(total/100, 1) != 0 && done != total {
			return
		}
		const width = 30
		filled := done * width / total
		fmt.Fprintf(stderr, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total)
		if done == total {
			fmt.Fprintln(stderr)
		}
	}
	rep, err := bench.Run(ctx, bench.Options{N: *n, VendorLatency: *latency, InFlight: *inFlight, Timeout: *timeout,
		Progress: progress, NoBaseline: *noBaseline, NATSURL: *natsURL, StoreDSN: *storeDSN, Rate: *rate, WaitingOTP: *waitingOTP})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(benchJSON(rep))
	}
	fmt.Fprint(stdout, rep.Table())
	return nil
}

// benchJSON is the report with durations in seconds.
func benchJSON(r bench.Report) map[string]any {
	s := func(d time.Duration) float64 { return d.Seconds() }
	return map[string]any{
		"registrations": r.N, "completed": r.Completed, "rate": r.Rate, "vendorLatencySeconds": s(r.VendorLatency), "inFlight": r.InFlight,
		"elapsedSeconds": s(r.Elapsed), "flowsPerSecond": r.FlowsPerSecond,
		"latencySeconds":        map[string]float64{"p50": s(r.P50), "p95": s(r.P95), "p99": s(r.P99), "max": s(r.Max)},
		"vendorSecondsPerFlow":  s(r.VendorTimePerFlow),
		"addedLatencySeconds":   map[string]float64{"p50": s(r.AddedP50), "p99": s(r.AddedP99)},
		"redelivered":           r.Redelivered,
		"deadLetters":           r.DeadLetters,
		"contactsCreated":       r.ContactsCreated,
		"duplicateEffects":      max(r.ContactsCreated-r.Completed, 0),
		"cpuSeconds":            r.CPUSeconds,
		"peakRSSBytes":          r.PeakRSSBytes,
		"baselineMsgsPerSecond": r.BaselineMsgsPerSecond,
		"baselineRatio":         r.BaselineRatio,
		"waitingForCode":        r.Waiting, "heapInUseBytes": r.HeapInUseBytes, "rssBytesWaiting": r.RSSBytes,
	}
}
