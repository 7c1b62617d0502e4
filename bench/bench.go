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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/fault"
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
}

// String formats the report for people.
func (r Report) String() string {
	return fmt.Sprintf("%d registrations, vendor latency %s, in flight %d: %d completed in %s = %.0f flows/s; "+
		"latency p50 %s p95 %s p99 %s max %s; redelivered %d, dead letters %d, contacts created %d",
		r.N, r.VendorLatency, r.InFlight, r.Completed, r.Elapsed.Round(time.Millisecond), r.FlowsPerSecond,
		r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond),
		r.Redelivered, r.DeadLetters, r.ContactsCreated)
}

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
	cfg.Tenants = map[string]config.Tenant{"bench": {Resamania: tenant}}
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
		if typ != "completed" && typ != "failed" && typ != "rejected" {
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
		if terminals == opts.N {
			close(done)
		}
	})
	if err != nil {
		return Report{}, err
	}
	defer sub.Unsubscribe()

	// The backlog is published before the service starts consuming, as
	// after an outage: every command is waiting when the handlers start.
	club := resamania.ClubIRI(acct.ClientToken, acct.Clubs[0].ID)
	node := resamania.NetworkNodeIRI(acct.ClientToken, acct.Clubs[0].NetworkNodeID)
	mu.Lock()
	start := time.Now()
	for i := range opts.N {
		id := fmt.Sprintf("bench-%06d", i)
		m := nats.NewMsg(events.CommandSubject(events.CmdResamaniaRegister))
		m.Data = fmt.Appendf(nil, `{"registrationId":%q,"tenant":"bench","clubId":%q,"networkNodeId":%q,`+
			`"contact":{"email":"%s@example.com","givenName":"Bench","familyName":"Mark","birthDate":"1990-01-01"}}`, id, club, node, id)
		m.Header.Set(nats.MsgIdHdr, id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			mu.Unlock()
			return Report{}, fmt.Errorf("publish: %w", err)
		}
		published[id] = time.Now()
	}
	mu.Unlock()
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(runCtx) }()

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

	rep := Report{N: opts.N, VendorLatency: opts.VendorLatency, InFlight: cfg.Processing.InFlight}
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
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return rep, err
	}
	return rep, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}
