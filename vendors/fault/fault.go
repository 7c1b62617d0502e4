// Package fault injects the failures vendors have in production — slow
// answers, 5xx, 429 with Retry-After, requests that hang — into the vendor
// simulators. An Injector is an http.Handler middleware whose configuration
// can be changed at run time (Set, FailNext, or over HTTP with ServeAdmin),
// so tests, the demo and a standalone simulator share one mechanism.
//
// Order of a request through Wrap: excluded paths pass untouched; then the
// latency (plus jitter) is waited, returning early if the client gives up;
// then a pending FailNext answers; then one random draw picks at most one of
// error, rate limit or timeout, with the configured rates; else the request
// reaches the wrapped handler.
package fault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults applied by New and Set to zero or negative fields.
const (
	DefaultRetryAfter = time.Second
	DefaultHangFor    = 30 * time.Second
)

// Config says which faults to inject. The zero value injects nothing.
//
// Rates are fractions in [0, 1] of the requests that reach the injector; one
// random draw per request picks at most one fault, so the rates add up (a
// sum above 1 is scaled down to 1 by Set). Durations marshal to JSON as Go
// duration strings ("50ms"); see UnmarshalJSON for what is accepted.
type Config struct {
	Latency       time.Duration `json:"latency" yaml:"latency"`             // added to every request
	Jitter        time.Duration `json:"jitter" yaml:"jitter"`               // ± uniformly random, around Latency (never below 0)
	ErrorRate     float64       `json:"errorRate" yaml:"errorRate"`         // fraction answered 503 {"message":"injected fault"}
	RateLimitRate float64       `json:"rateLimitRate" yaml:"rateLimitRate"` // fraction answered 429 with Retry-After
	RetryAfter    time.Duration `json:"retryAfter" yaml:"retryAfter"`       // Retry-After of injected 429s, rounded up to seconds (default 1s)
	TimeoutRate   float64       `json:"timeoutRate" yaml:"timeoutRate"`     // fraction that hang until the client gives up or HangFor elapses, then 504
	HangFor       time.Duration `json:"hangFor" yaml:"hangFor"`             // default 30s
	// Exclude lists URL path prefixes that are never faulted (health checks,
	// admin endpoints mounted behind the injector). FailNext does not count
	// them either.
	Exclude []string `json:"exclude,omitempty" yaml:"exclude,omitempty"`
}

// Validate reports a rate outside [0, 1] or a negative duration. Set does not
// call it (it clamps instead); the admin endpoint does, to refuse bad input.
func (c Config) Validate() error {
	for name, r := range map[string]float64{"errorRate": c.ErrorRate, "rateLimitRate": c.RateLimitRate, "timeoutRate": c.TimeoutRate} {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return fmt.Errorf("fault: %s must be in [0, 1], got %v", name, r)
		}
	}
	if s := c.ErrorRate + c.RateLimitRate + c.TimeoutRate; s > 1+1e-9 {
		return fmt.Errorf("fault: errorRate + rateLimitRate + timeoutRate must not exceed 1, got %v", s)
	}
	for name, d := range map[string]time.Duration{"latency": c.Latency, "jitter": c.Jitter, "retryAfter": c.RetryAfter, "hangFor": c.HangFor} {
		if d < 0 {
			return fmt.Errorf("fault: %s must not be negative, got %v", name, d)
		}
	}
	return nil
}

// normalized clamps rates into [0, 1] (scaling their sum down to 1),
// negative durations to 0, and fills the defaults.
func (c Config) normalized() Config {
	clamp := func(r float64) float64 {
		if math.IsNaN(r) || r < 0 {
			return 0
		}
		return min(r, 1)
	}
	c.ErrorRate, c.RateLimitRate, c.TimeoutRate = clamp(c.ErrorRate), clamp(c.RateLimitRate), clamp(c.TimeoutRate)
	if s := c.ErrorRate + c.RateLimitRate + c.TimeoutRate; s > 1 {
		c.ErrorRate, c.RateLimitRate, c.TimeoutRate = c.ErrorRate/s, c.RateLimitRate/s, c.TimeoutRate/s
	}
	c.Latency, c.Jitter = max(c.Latency, 0), max(c.Jitter, 0)
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.HangFor <= 0 {
		c.HangFor = DefaultHangFor
	}
	c.Exclude = append([]string(nil), c.Exclude...)
	return c
}

// Injector injects the faults of its Config into the handlers it wraps. It is
// safe for concurrent use; configuration changes apply to requests that
// arrive afterwards.
type Injector struct {
	mu         sync.Mutex
	cfg        Config
	failNext   int
	failStatus int
}

// New returns an Injector with cfg (normalized as by Set).
func New(cfg Config) *Injector {
	return &Injector{cfg: cfg.normalized()}
}

// Set replaces the configuration. Out-of-range values are clamped (see
// Config); zero RetryAfter and HangFor take their defaults. Pending FailNext
// answers are kept.
func (i *Injector) Set(cfg Config) {
	cfg = cfg.normalized()
	i.mu.Lock()
	i.cfg = cfg
	i.mu.Unlock()
}

// Config returns the current configuration, defaults filled in.
func (i *Injector) Config() Config {
	i.mu.Lock()
	defer i.mu.Unlock()
	c := i.cfg
	c.Exclude = append([]string(nil), c.Exclude...)
	return c
}

// FailNext makes the next n requests (excluded paths not counted) answer
// status, 503 when status is 0. A 429 carries Retry-After. It replaces any
// pending FailNext; n <= 0 cancels it. FailNext answers come after the
// latency and before the random faults.
func (i *Injector) FailNext(n int, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	i.mu.Lock()
	i.failNext, i.failStatus = max(n, 0), status
	i.mu.Unlock()
}

// PendingFailures returns how many FailNext answers are still to come.
func (i *Injector) PendingFailures() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.failNext
}

// Wrap returns next with the faults injected in front of it.
func (i *Injector) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.mu.Lock()
		cfg := i.cfg // Exclude is replaced, never changed in place: sharing it is safe
		i.mu.Unlock()
		if excluded(cfg.Exclude, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		d := delay(cfg.Latency, cfg.Jitter)
		p := rand.Float64()
		hang := cfg.ErrorRate+cfg.RateLimitRate <= p && p < cfg.ErrorRate+cfg.RateLimitRate+cfg.TimeoutRate
		if d > 0 || hang {
			bufferBody(r)
		}
		if d > 0 && !sleep(r.Context(), d) {
			return // the client gave up: nobody reads an answer
		}
		if status, ok := i.takeFailNext(); ok {
			writeFault(w, status, cfg.RetryAfter)
			return
		}
		switch {
		case p < cfg.ErrorRate:
			writeFault(w, http.StatusServiceUnavailable, 0)
		case p < cfg.ErrorRate+cfg.RateLimitRate:
			writeFault(w, http.StatusTooManyRequests, cfg.RetryAfter)
		case hang:
			sleep(r.Context(), cfg.HangFor)
			writeJSONMessage(w, http.StatusGatewayTimeout, "injected timeout")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (i *Injector) takeFailNext() (int, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failNext == 0 {
		return 0, false
	}
	i.failNext--
	return i.failStatus, true
}

func excluded(prefixes []string, path string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// maxBuffered bounds the request body bufferBody holds in memory.
const maxBuffered = 1 << 20

// bufferBody reads the request body into memory (up to maxBuffered) before
// the request waits. net/http notices a client that closes its connection
// (and cancels the request context) only once the handler has read the
// body: without this, a POST would wait out its latency or hang in full
// after its client gave up.
func bufferBody(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	orig := r.Body
	buf, err := io.ReadAll(io.LimitReader(orig, maxBuffered+1))
	var rd io.Reader = bytes.NewReader(buf)
	if err != nil || len(buf) > maxBuffered {
		rd = io.MultiReader(rd, orig) // the rest (or the read error) follows
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{rd, orig}
}

// delay returns latency ± a uniform jitter, never negative.
func delay(latency, jitter time.Duration) time.Duration {
	if jitter > 0 {
		latency += time.Duration(rand.Int64N(2*int64(jitter)+1)) - jitter
	}
	return max(latency, 0)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeFault(w http.ResponseWriter, status int, retryAfter time.Duration) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(retryAfter), 10))
		writeJSONMessage(w, status, "injected rate limit")
		return
	}
	writeJSONMessage(w, status, "injected fault")
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

func writeJSONMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{%q:%q}\n", "message", msg)
}
