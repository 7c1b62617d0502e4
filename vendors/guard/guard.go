// Package guard protects a vendor, and registrar from it, at the HTTP
// level: one Guard per (tenant, vendor) wraps the transport of that
// tenant's client with a client-side rate limit (throttling, optional) and
// a circuit breaker.
//
// The breaker counts transient failures (connection errors, timeouts, 5xx,
// 408) and successes (every other answer; a 429 counts as neither, since
// throttling is not an outage). After Threshold consecutive failures it
// opens: calls fail at once with an *OpenError (errors.Is ErrOpen), which
// the handlers turn into parking — the message comes back after RetryAt —
// instead of spending their retry budget against a vendor that is down.
// When OpenFor has passed it half-opens: one call at a time goes through as
// a probe; a success closes it, a failure opens it again for twice as long
// (up to MaxOpenFor).
package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/registrar-dev/registrar/vendors"
)

// ErrOpen: the circuit of the vendor is open; the call was not made.
var ErrOpen = errors.New("circuit open")

// OpenError is the error of a call refused by an open circuit.
type OpenError struct {
	Tenant, Vendor string
	// RetryAt is when the breaker lets a probe through.
	RetryAt time.Time
	// LastFailure describes the failure that opened (or reopened) it:
	// "HTTP 503", or the transport error.
	LastFailure string
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit of %s for tenant %s is open until %s after %s: call not made", e.Vendor, e.Tenant,
		e.RetryAt.UTC().Format(time.RFC3339), e.LastFailure)
}

// Is makes errors.Is(err, ErrOpen) hold.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// RetryAtOf returns when the open circuit behind err lets a probe through.
func RetryAtOf(err error) (time.Time, bool) {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe.RetryAt, true
	}
	return time.Time{}, false
}

// State is a breaker's state.
type State int

// The states, as the registrar_circuit_state gauge shows them.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "unknown"
}

// Config configures a Guard.
type Config struct {
	Tenant, Vendor string
	// Threshold is how many consecutive transient failures open the
	// circuit; default 5; negative: no breaker.
	Threshold int
	// OpenFor is how long the circuit stays open the first time; default
	// 2s. Each failed probe doubles it, up to MaxOpenFor (default 30s).
	OpenFor, MaxOpenFor time.Duration
	// PerSecond and Burst throttle the calls (a token bucket); PerSecond
	// <= 0: no throttling.
	PerSecond float64
	Burst     int
	Metrics   *Metrics
	Now       func() time.Time
}

// Guard is the breaker and throttle of one (tenant, vendor).
type Guard struct {
	cfg     Config
	limiter *rate.Limiter

	mu       sync.Mutex
	state    State
	failures int
	openFor  time.Duration
	retryAt  time.Time
	probing  bool
	last     string // the last failure, for OpenError
}

// New returns a guard.
func New(cfg Config) *Guard {
	if cfg.Threshold == 0 {
		cfg.Threshold = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 2 * time.Second
	}
	if cfg.MaxOpenFor <= 0 {
		cfg.MaxOpenFor = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, openFor: cfg.OpenFor}
	if cfg.PerSecond > 0 {
		g.limiter = rate.NewLimiter(rate.Limit(cfg.PerSecond), max(cfg.Burst, 1))
	}
	if cfg.Metrics != nil {
		cfg.Metrics.stateGauge.WithLabelValues(cfg.Tenant, cfg.Vendor).Set(float64(Closed))
	}
	return g
}

// State returns the breaker's state and, when open, when it lets a probe
// through.
func (g *Guard) State() (State, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Open && !g.cfg.Now().Before(g.retryAt) {
		return HalfOpen, g.retryAt
	}
	return g.state, g.retryAt
}

// Tenant and Vendor name the guard.
func (g *Guard) Tenant() string { return g.cfg.Tenant }
func (g *Guard) Vendor() string { return g.cfg.Vendor }

// allow admits a call, or refuses it with an *OpenError. probe reports a
// half-open probe, which must be followed by record.
func (g *Guard) allow() (probe bool, err error) {
	if g.cfg.Threshold < 0 {
		return false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case Closed:
		return false, nil
	case Open:
		if g.cfg.Now().Before(g.retryAt) {
			return false, &OpenError{Tenant: g.cfg.Tenant, Vendor: g.cfg.Vendor, RetryAt: g.retryAt, LastFailure: g.last}
		}
		g.setState(HalfOpen)
	}
	// Half-open: one probe at a time.
	if g.probing {
		return false, &OpenError{Tenant: g.cfg.Tenant, Vendor: g.cfg.Vendor, RetryAt: g.cfg.Now().Add(g.cfg.OpenFor / 2), LastFailure: g.last}
	}
	g.probing = true
	return true, nil
}

// outcome of a call, for the breaker.
type outcome int

const (
	neutral outcome = iota
	success
	failure
)

func (g *Guard) record(probe bool, o outcome, what string) {
	if g.cfg.Threshold < 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	switch o {
	case success:
		g.failures = 0
		if g.state != Closed {
			g.openFor = g.cfg.OpenFor
			g.setState(Closed)
		}
	case failure:
		g.failures++
		g.last = what
		switch {
		case g.state == HalfOpen && probe:
			// The probe failed: open again, for longer.
			g.openFor = min(2*g.openFor, g.cfg.MaxOpenFor)
			g.open()
		case g.state == Closed && g.failures >= g.cfg.Threshold:
			g.open()
		}
	case neutral:
		if probe && g.state == HalfOpen {
			// A 429 or a cancelled probe says nothing: let another probe go.
			return
		}
	}
}

func (g *Guard) open() {
	g.retryAt = g.cfg.Now().Add(g.openFor)
	g.setState(Open)
}

func (g *Guard) setState(s State) {
	if g.state == s {
		return
	}
	g.state = s
	g.cfg.Metrics.state(g.cfg.Tenant, g.cfg.Vendor, s)
}

// RoundTripper wraps next (http.DefaultTransport when nil) with the guard.
func (g *Guard) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{g: g, next: next}
}

// Client returns a copy of hc whose transport is guarded.
func (g *Guard) Client(hc *http.Client) *http.Client {
	if hc == nil {
		hc = &http.Client{}
	}
	c := *hc
	c.Transport = g.RoundTripper(hc.Transport)
	return &c
}

type roundTripper struct {
	g    *Guard
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	g := rt.g
	op := vendors.OpOf(req.Context())
	if op == "" {
		op = "other"
	}
	probe, err := g.allow()
	if err != nil {
		g.cfg.Metrics.refused(g.cfg.Tenant, g.cfg.Vendor)
		g.cfg.Metrics.request(g.cfg.Vendor, op, "circuit_open", 0)
		return nil, err
	}
	if g.limiter != nil {
		start := time.Now()
		if err := g.limiter.Wait(req.Context()); err != nil {
			g.record(probe, neutral, "")
			return nil, err
		}
		g.cfg.Metrics.waited(g.cfg.Tenant, g.cfg.Vendor, time.Since(start))
	}
	start := time.Now()
	resp, err := rt.next.RoundTrip(req)
	class, o, what := classify(req.Context(), resp, err)
	g.cfg.Metrics.request(g.cfg.Vendor, op, class, time.Since(start))
	g.record(probe, o, what)
	return resp, err
}

// classify reads a call's reply once: class is its outcome label for the
// metrics (2xx, 3xx, 4xx, 429, 5xx, timeout, error: no answer, cancelled:
// the caller gave up), o what it means to the breaker, and what describes
// a failure for OpenError.
func classify(ctx context.Context, resp *http.Response, err error) (class string, o outcome, what string) {
	switch {
	case err != nil && ctx.Err() != nil:
		return "cancelled", neutral, ""
	case err != nil:
		class = "error"
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			class = "timeout"
		}
		return class, failure, "a transport error (" + transportError(err) + ")"
	case resp.StatusCode == http.StatusTooManyRequests:
		return "429", neutral, "" // throttling is not an outage
	}
	class = strconv.Itoa(resp.StatusCode/100) + "xx"
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout {
		return class, failure, "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return class, success, ""
}

// transportError describes a transport error without its URL (which may
// carry query parameters).
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Metrics are the guards' Prometheus metrics; a nil *Metrics records
// nothing. Labels: configured tenant names and vendor names (bounded).
type Metrics struct {
	stateGauge  *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	waits       *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "registrar", Name: "circuit_state",
			Help: "State of the circuit breaker of a vendor for a tenant: 0 closed, 1 half-open, 2 open.",
		}, []string{"tenant", "vendor"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "circuit_transitions_total",
			Help: "Circuit breaker state changes, by tenant, vendor and the state entered.",
		}, []string{"tenant", "vendor", "state"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "circuit_refused_calls_total",
			Help: "Vendor calls not made because the circuit was open (their messages were parked).",
		}, []string{"tenant", "vendor"}),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "registrar", Name: "vendor_throttle_wait_seconds",
			Help:    "Time vendor calls waited for the client-side rate limit, by tenant and vendor.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"tenant", "vendor"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "vendor_requests_total",
			Help: "HTTP requests to vendors, by vendor, client operation and outcome (2xx, 4xx, 429, 5xx, timeout, error, cancelled, circuit_open: not made).",
		}, []string{"vendor", "operation", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "registrar", Name: "vendor_request_duration_seconds",
			Help:    "Duration of the HTTP requests to vendors that were made, by vendor and client operation.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"vendor", "operation"}),
	}
	for _, c := range []prometheus.Collector{m.stateGauge, m.transitions, m.refusals, m.waits, m.requests, m.durations} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register guard metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) state(tenant, vendor string, s State) {
	if m == nil {
		return
	}
	m.stateGauge.WithLabelValues(tenant, vendor).Set(float64(s))
	m.transitions.WithLabelValues(tenant, vendor, s.String()).Inc()
}

func (m *Metrics) refused(tenant, vendor string) {
	if m != nil {
		m.refusals.WithLabelValues(tenant, vendor).Inc()
	}
}

func (m *Metrics) waited(tenant, vendor string, d time.Duration) {
	if m != nil {
		m.waits.WithLabelValues(tenant, vendor).Observe(d.Seconds())
	}
}

func (m *Metrics) request(vendor, op, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(vendor, op, outcome).Inc()
	if outcome != "circuit_open" {
		m.durations.WithLabelValues(vendor, op).Observe(d.Seconds())
	}
}
