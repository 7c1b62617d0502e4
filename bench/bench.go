// Package bench measures registrar end to end: it runs the service, the
// simulators and an embedded NATS server in one process, publishes N
// registrations at once (a backlog) and reports throughput, latency
// percentiles from publish to terminal event, redeliveries, dead letters
// and the vendor side effects seen by the simulator.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Options configure a run.
type Options struct {
	// N is how many resamania.register commands are published; default 2000.
	N int
	// VendorLatency is added by the simulator to every vendor call.
	VendorLatency time.Duration
	// InFlight is processing.inFlight (messages per handler at once);
	// default the configuration's default.
	InFlight int
	// Timeout bounds the run; default 5 minutes.
	Timeout time.Duration
	// Dir holds the store and the NATS data; empty: a temporary directory.
	Dir    string
	Logger *slog.Logger
	// Progress, if set, is called as registrations end (done of total).
	Progress func(done, total int)
	// NoBaseline skips the raw JetStream baseline.
	NoBaseline bool
	// NATSURL and StoreDSN run against a NATS server and a store of the
	// caller's instead of the embedded ones.
	NATSURL, StoreDSN string
	// WaitingOTP publishes MARTA sign-ups instead, and a flow counts as
	// done when it waits for its code (otp.requested): the run measures
	// what N flows waiting for a one-time code cost (RSS, the store).
	WaitingOTP bool
	// Rate, when positive, publishes the registrations at this many per
	// second while the service runs (open loop) instead of as a backlog
	// before it starts: the latencies are then free of queueing as long
	// as the service keeps up.
	Rate float64
}

// Report is what a run measured.
type Report struct {
	N               int
	Completed       int
	Elapsed         time.Duration // first publish to last terminal event
	FlowsPerSecond  float64
	P50, P95, P99   time.Duration // publish → terminal event
	Max             time.Duration
	Redelivered     int // messages JetStream delivered more than once, over all consumers
	DeadLetters     int
	ContactsCreated int // successful creations at the simulator (must equal Completed for new people)
	VendorLatency   time.Duration
	InFlight        int
	Rate            float64 // the open-loop publication rate; 0: a backlog
	// With WaitingOTP: the flows the store has waiting for a code at the
	// end, and the Go heap in use then (after a GC).
	Waiting        int
	HeapInUseBytes int64
	RSSBytes       int64 // the resident set then, after returning freed memory to the OS (Linux)
	// VendorTimePerFlow is the mean time a flow spent in vendor calls
	// (registrar_vendor_request_duration_seconds' sum over the completed
	// flows); the Added* figures are the latency percentiles minus it:
	// what registrar itself adds.
	VendorTimePerFlow     time.Duration
	AddedP50, AddedP99    time.Duration
	CPUSeconds            float64 // user + system CPU of the process during the run (service, NATS and simulator together)
	PeakRSSBytes          int64   // the process's peak resident set
	BaselineMsgsPerSecond float64 // a raw JetStream consume → publish → ack loop on the same server, with nats.go
	BaselineRatio         float64 // FlowsPerSecond / BaselineMsgsPerSecond
}

// String formats the report for people.
func (r Report) String() string {
	return fmt.Sprintf("%d registrations, vendor latency %s, in flight %d: %d completed in %s = %.0f flows/s; "+
		"latency p50 %s p95 %s p99 %s max %s; redelivered %d, dead letters %d, contacts created %d",
		r.N, r.VendorLatency, r.InFlight, r.Completed, r.Elapsed.Round(time.Millisecond), r.FlowsPerSecond,
		r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond),
		r.Redelivered, r.DeadLetters, r.ContactsCreated)
}

// Table formats the report as a table for people.
func (r Report) Table() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-34s %s\n", k, v) }
	ms := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	row("registrations", fmt.Sprintf("%d (completed %d)", r.N, r.Completed))
	row("vendor latency per call", r.VendorLatency.String())
	row("in flight per handler", fmt.Sprint(r.InFlight))
	if r.Rate > 0 {
		row("published", fmt.Sprintf("open loop at %.0f/s", r.Rate))
	} else {
		row("published", "as a backlog before the service starts")
	}
	row("elapsed", ms(r.Elapsed))
	row("throughput", fmt.Sprintf("%.0f flows/s", r.FlowsPerSecond))
	row("latency p50 / p95 / p99 / max", fmt.Sprintf("%s / %s / %s / %s", ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max)))
	row("vendor time per flow (mean)", ms(r.VendorTimePerFlow))
	row("added by registrar p50 / p99", fmt.Sprintf("%s / %s", ms(r.AddedP50), ms(r.AddedP99)))
	row("redelivered", fmt.Sprint(r.Redelivered))
	row("dead letters", fmt.Sprint(r.DeadLetters))
	row("duplicate effects", fmt.Sprintf("%d (contacts created %d for %d new people)", max(r.ContactsCreated-r.Completed, 0), r.ContactsCreated, r.Completed))
	row("CPU", fmt.Sprintf("%.2f s (%.0f µs per flow)", r.CPUSeconds, r.CPUSeconds*1e6/float64(max(r.Completed, 1))))
	row("peak RSS", fmt.Sprintf("%.0f MiB", float64(r.PeakRSSBytes)/(1<<20)))
	if r.Waiting > 0 {
		row("flows waiting for a code", fmt.Sprintf("%d: then RSS %.0f MiB, Go heap in use %.0f MiB (after a GC; the simulators' and NATS's state included)",
			r.Waiting, float64(r.RSSBytes)/(1<<20), float64(r.HeapInUseBytes)/(1<<20)))
	}
	if r.BaselineMsgsPerSecond > 0 {
		row("baseline: raw consume→publish→ack", fmt.Sprintf("%.0f msgs/s (registrar at %.1f%% of it, %.1f%% per hop with %d hops per flow)",
			r.BaselineMsgsPerSecond, 100*r.BaselineRatio, 100*r.BaselineRatio*hopsPerFlow, hopsPerFlow))
	}
	return b.String()
}

// hopsPerFlow is how many messages a resamania.register flow of a new
// person consumes: the command, then the lookup and create steps.
const hopsPerFlow = 3

// Run runs one measurement.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.N <= 0 {
		opts.N = 2000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "registrar-bench-")
		if err != nil {
			return Report{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}

	sc := resamania.DefaultSimConfig()
	sc.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	sc.Faults = fault.Config{Latency: opts.VendorLatency}
	sims, err := simulators.Start(simulators.Config{Resamania: &sc})
	if err != nil {
		return Report{}, err
	}
	defer sims.Close()
	acct := sc.Accounts[0]
	tenant, err := sims.ResamaniaTenant(acct.ClientToken)
	if err != nil {
		return Report{}, err
	}

	cfg := config.Default()
	cfg.UseDataDir(dir)
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	if opts.InFlight > 0 {
		cfg.Processing.InFlight = opts.InFlight
	}
	cfg.Tenants = map[string]config.Tenant{"bench": {Resamania: tenant, Marta: sims.MartaTenant()}}
	if opts.NATSURL != "" {
		cfg.NATS.URL = opts.NATSURL
	}
	if opts.StoreDSN != "" {
		cfg.Store.DSN = opts.StoreDSN
	}
	svc, err := service.New(ctx, service.Options{Config: cfg, Logger: opts.Logger})
	if err != nil {
		return Report{}, err
	}
	defer svc.Close()

	nc, err := nats.Connect(svc.NATSURL(), nats.Name("registrar-bench"))
	if err != nil {
		return Report{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return Report{}, err
	}

	var mu sync.Mutex
	published := make(map[string]time.Time, opts.N)
	var latencies []time.Duration
	var last time.Time
	done := make(chan struct{})
	terminals := 0
	sub, err := nc.Subscribe(events.EventSubjectPrefix+">", func(m *nats.Msg) {
		typ := strings.TrimPrefix(m.Subject, events.EventSubjectPrefix)
		if opts.WaitingOTP && typ == events.EvtOTPRequested {
			typ = "completed" // the flow is where the run wants it
		} else if typ != "completed" && typ != "failed" && typ != "rejected" {
			return
		}
		now := time.Now()
		var env events.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if t0, ok := published[env.RegistrationID]; ok && typ == "completed" {
			latencies = append(latencies, now.Sub(t0))
		}
		terminals++
		last = now
		if opts.Progress != nil {
			opts.Progress(terminals, opts.N)
		}
		if terminals == opts.N {
			close(done)
		}
	})
	if err != nil {
		return Report{}, err
	}
	defer sub.Unsubscribe()

	club := resamania.ClubIRI(acct.ClientToken, acct.Clubs[0].ID)
	node := resamania.NetworkNodeIRI(acct.ClientToken, acct.Clubs[0].NetworkNodeID)
	// Ids of this run only: a server or store of the caller's may hold an
	// earlier run's (and de-duplicate them).
	run := time.Now().UTC().Format("150405.000")
	publishOne := func(i int) error {
		id := fmt.Sprintf("bench-%s-%06d", run, i)
		m := nats.NewMsg(events.CommandSubject(events.CmdResamaniaRegister))
		m.Data = fmt.Appendf(nil, `{"registrationId":%q,"tenant":"bench","clubId":%q,"networkNodeId":%q,`+
			`"contact":{"email":"%s@example.com","givenName":"Bench","familyName":"Mark","birthDate":"1990-01-01"}}`, id, club, node, id)
		if opts.WaitingOTP {
			m = nats.NewMsg(events.CommandSubject(events.CmdMartaSignup))
			m.Data = fmt.Appendf(nil, `{"registrationId":%q,"tenant":"bench","campaignId":%q,"categoryId":"56","deviceType":1,`+
				`"username":"%s@example.com","password":"bench-Passw0rd","profile":{"name":"Bench","surname":"Mark","gender":"F","birthdate":"1990-01-01"}}`,
				id, marta.DemoCampaignID, id)
		}
		m.Header.Set(nats.MsgIdHdr, id)
		mu.Lock()
		published[id] = time.Now()
		mu.Unlock()
		if _, err := js.PublishMsgAsync(m); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	}
	startService := func() (context.CancelFunc, chan error) {
		runCtx, stop := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- svc.Run(runCtx) }()
		return stop, runErr
	}

	var start time.Time
	var cpu0 time.Duration
	var stop context.CancelFunc
	var runErr chan error
	if opts.Rate <= 0 {
		// The backlog is published before the service starts consuming,
		// as after an outage: every command is waiting when the handlers
		// start.
		start = time.Now()
		for i := range opts.N {
			if err := publishOne(i); err != nil {
				return Report{}, err
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
		cpu0 = cpuTime()
		stop, runErr = startService()
	} else {
		// Open loop: the service runs, and registrations arrive at Rate,
		// whatever the service does with them.
		cpu0 = cpuTime()
		stop, runErr = startService()
		select {
		case <-svc.Running():
		case err := <-runErr:
			return Report{}, fmt.Errorf("service stopped: %w", err)
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
		start = time.Now()
		interval := time.Duration(float64(time.Second) / opts.Rate)
		for i := range opts.N {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			if err := publishOne(i); err != nil {
				return Report{}, err
			}
		}
	}
	defer stop()

	select {
	case <-done:
	case err := <-runErr:
		return Report{}, fmt.Errorf("service stopped: %w", err)
	case <-ctx.Done():
		mu.Lock()
		n := terminals
		mu.Unlock()
		return Report{}, fmt.Errorf("%d of %d registrations ended before the timeout: %w", n, opts.N, ctx.Err())
	}

	rep := Report{N: opts.N, VendorLatency: opts.VendorLatency, InFlight: cfg.Processing.InFlight, Rate: opts.Rate}
	mu.Lock()
	rep.Completed = len(latencies)
	rep.Elapsed = last.Sub(start)
	slices.Sort(latencies)
	if len(latencies) > 0 {
		rep.P50 = percentile(latencies, 0.50)
		rep.P95 = percentile(latencies, 0.95)
		rep.P99 = percentile(latencies, 0.99)
		rep.Max = latencies[len(latencies)-1]
	}
	mu.Unlock()
	rep.FlowsPerSecond = float64(rep.Completed) / rep.Elapsed.Seconds()
	rep.CPUSeconds = (cpuTime() - cpu0).Seconds()
	rep.PeakRSSBytes = peakRSS()
	if vt, err := vendorSeconds(svc); err == nil && rep.Completed > 0 {
		rep.VendorTimePerFlow = time.Duration(vt / float64(rep.Completed) * float64(time.Second))
		rep.AddedP50 = max(rep.P50-rep.VendorTimePerFlow, 0)
		rep.AddedP99 = max(rep.P99-rep.VendorTimePerFlow, 0)
	}

	topo := svc.Topology()
	for _, stream := range []string{topo.Commands, topo.Steps} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return rep, err
		}
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			rep.Redelivered += ci.NumRedelivered
		}
		if err := lister.Err(); err != nil {
			return rep, err
		}
	}
	if st, err := js.Stream(ctx, topo.DeadLetters); err == nil {
		info, err := st.Info(ctx)
		if err != nil {
			return rep, err
		}
		rep.DeadLetters = int(info.State.Msgs)
	}
	rep.ContactsCreated = sims.Resamania.CountResponses("POST", "/contacts", 201)
	if opts.WaitingOTP {
		// No contact is created: the flows wait for their codes.
		rep.ContactsCreated = rep.Completed
		debug.FreeOSMemory() // a GC, and the freed memory back to the OS
		rep.HeapInUseBytes = heapInUse()
		rep.RSSBytes = currentRSS()
		if counts, err := svc.Store().WaitingCounts(ctx); err == nil {
			rep.Waiting = counts[handlers.WaitingForOTP]
		}
	}
	if !opts.NoBaseline {
		// The same server, the same number of messages, once the service
		// is idle.
		base, err := Baseline(ctx, js, opts.N*hopsPerFlow)
		if err != nil {
			return rep, fmt.Errorf("baseline: %w", err)
		}
		rep.BaselineMsgsPerSecond = base
		rep.BaselineRatio = rep.FlowsPerSecond / base
	}
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return rep, err
	}
	return rep, nil
}

// vendorSeconds is the total time of the vendor calls the service made.
func vendorSeconds(svc *service.Service) (float64, error) {
	families, err := svc.Registry().Gather()
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "registrar_vendor_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}
