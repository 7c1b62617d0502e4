package resamania

import (
	"context"
	"crypto/sha256"
	"sort"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// DefaultRateJitter is RateLimiterConfig.Jitter's default.
const DefaultRateJitter = 50 * time.Millisecond

// RateLimiterConfig is the budget a RateLimiter keeps every API key under.
// The zero value is the gateway's guideline: 1000 requests a minute and 30
// per 100 ms per API key.
type RateLimiterConfig struct {
	// PerMinute bounds the requests of one API key in any minute. Default
	// DefaultRatePerMinute (1000); negative: no bound.
	PerMinute int `json:"perMinute" yaml:"perMinute"`
	// SpikeArrest bounds the requests of one API key in any 100 ms. Default
	// DefaultSpikeArrest (30); negative: no bound.
	SpikeArrest int `json:"spikeArrest" yaml:"spikeArrest"`
	// Jitter widens both windows: the gateway counts requests when they
	// arrive, in fixed windows, and a request may take up to Jitter longer
	// to get there than another without the gateway seeing more than the
	// budget in one of its windows. Default DefaultRateJitter (50 ms);
	// negative: none.
	Jitter time.Duration `json:"jitter" yaml:"jitter"`
}

// RateLimiter paces the requests of every Client it is given to (see
// WithRateLimiter), token requests included, so that no API key goes over
// the gateway's limits: each API key has its own budget, shared by all the
// clients that use that key. Create one per process and give it to every
// client; NewClient without one creates a RateLimiter of its own, so two
// clients of one key made that way each spend the whole budget.
//
// It counts in sliding windows (any minute, any 100 ms, widened by Jitter),
// which keeps the gateway's fixed windows within bounds too. Callers wait
// in the order they ask; a caller whose context deadline comes before its
// turn gets a RateLimited error at once, with RetryAfter set to the wait.
// It is safe for concurrent use.
type RateLimiter struct {
	perMinute, spike          int // <= 0: off
	minuteWindow, spikeWindow time.Duration
	now                       func() time.Time // real time: the limiter paces in real time

	mu   sync.Mutex
	keys map[[sha256.Size]byte]*sendTimes
}

// sendTimes are the send times of one API key, past and reserved, sorted:
// the last of them inside the longest window.
type sendTimes struct{ t []time.Time }

// NewRateLimiter returns a limiter keeping every API key under cfg.
func NewRateLimiter(cfg RateLimiterConfig) *RateLimiter {
	if cfg.PerMinute == 0 {
		cfg.PerMinute = DefaultRatePerMinute
	}
	if cfg.SpikeArrest == 0 {
		cfg.SpikeArrest = DefaultSpikeArrest
	}
	switch {
	case cfg.Jitter == 0:
		cfg.Jitter = DefaultRateJitter
	case cfg.Jitter < 0:
		cfg.Jitter = 0
	}
	return &RateLimiter{
		perMinute: cfg.PerMinute, spike: cfg.SpikeArrest,
		minuteWindow: rateLimitWindow + cfg.Jitter, spikeWindow: spikeArrestWindow + cfg.Jitter,
		now: time.Now, keys: map[[sha256.Size]byte]*sendTimes{},
	}
}

// limiterKey is how a RateLimiter knows an API key without keeping it.
func limiterKey(apiKey string) [sha256.Size]byte { return sha256.Sum256([]byte(apiKey)) }

func (l *RateLimiter) off() bool { return l.perMinute <= 0 && l.spike <= 0 }

// wait blocks until key may send one more request, or returns a
// RateLimited error (the deadline of ctx comes first) or ctx.Err().
func (l *RateLimiter) wait(ctx context.Context, key [sha256.Size]byte, op string) error {
	if l.off() {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	at := l.reserve(key, now)
	d := at.Sub(now)
	if dl, ok := ctx.Deadline(); ok && d > 0 && at.After(dl) {
		l.mu.Unlock()
		return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.RateLimited, Code: "client_rate_limited",
			Message: "client-side rate limit: the context deadline is too near to wait", RetryAfter: d}
	}
	st := l.keys[key]
	st.t = append(st.t, at)
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.release(key, at)
		return ctx.Err()
	}
}

// reserve returns the earliest time, not before now nor before any send
// already reserved, at which key may send without going over a window
// (caller holds l.mu).
func (l *RateLimiter) reserve(key [sha256.Size]byte, now time.Time) time.Time {
	st := l.keys[key]
	if st == nil {
		st = &sendTimes{}
		l.keys[key] = st
	}
	st.prune(now.Add(-max(l.minuteWindow, l.spikeWindow)), max(l.perMinute, l.spike))
	at := now
	n := len(st.t)
	if n > 0 && st.t[n-1].After(at) {
		at = st.t[n-1]
	}
	// A window (at-W, at] holds send s when at < s+W: the budget-th latest
	// send must be at least W before at.
	for _, w := range []struct {
		budget int
		window time.Duration
	}{{l.spike, l.spikeWindow}, {l.perMinute, l.minuteWindow}} {
		if w.budget > 0 && n >= w.budget {
			if next := st.t[n-w.budget].Add(w.window); next.After(at) {
				at = next
			}
		}
	}
	return at
}

// release gives back a reserved send its caller gave up on.
func (l *RateLimiter) release(key [sha256.Size]byte, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	if st == nil {
		return
	}
	i := sort.Search(len(st.t), func(i int) bool { return !st.t[i].Before(at) })
	if i < len(st.t) && st.t[i].Equal(at) {
		st.t = append(st.t[:i], st.t[i+1:]...)
	}
}

// prune drops the sends at or before horizon and keeps at most keep of the
// latest ones: no window reaches further.
func (s *sendTimes) prune(horizon time.Time, keep int) {
	i := sort.Search(len(s.t), func(i int) bool { return s.t[i].After(horizon) })
	i = max(i, len(s.t)-keep)
	if i > 0 {
		s.t = append(s.t[:0], s.t[i:]...)
	}
}
