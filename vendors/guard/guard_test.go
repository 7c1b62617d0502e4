package guard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// vendor answers with the status in status.
func vendor(t *testing.T, status *atomic.Int32, calls *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, hc *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestBreakerOpensParksProbesAndCloses(t *testing.T) {
	var status, calls atomic.Int32
	status.Store(503)
	srv := vendor(t, &status, &calls)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := New(Config{Tenant: "acme", Vendor: "resamania", Threshold: 3, OpenFor: time.Second, MaxOpenFor: 4 * time.Second, Now: clk.now})
	hc := g.Client(srv.Client())

	for i := range 3 {
		if code, err := get(t, hc, srv.URL); err != nil || code != 503 {
			t.Fatalf("call %d: %d %v", i, code, err)
		}
	}
	if st, _ := g.State(); st != Open {
		t.Fatalf("state after 3 failures = %v, want open", st)
	}
	_, err := get(t, hc, srv.URL)
	var oe *OpenError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &oe) || !oe.RetryAt.Equal(clk.now().Add(time.Second)) {
		t.Fatalf("call while open: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("the vendor got %d calls, want 3 (none while open)", calls.Load())
	}

	// Half-open: a failed probe opens it again, for twice as long.
	clk.add(time.Second)
	if code, err := get(t, hc, srv.URL); err != nil || code != 503 {
		t.Fatalf("probe: %d %v", code, err)
	}
	st, until := g.State()
	if st != Open || !until.Equal(clk.now().Add(2*time.Second)) {
		t.Fatalf("after a failed probe: %v until %v", st, until)
	}

	// The vendor is back: the next probe closes it.
	status.Store(200)
	clk.add(2 * time.Second)
	if code, err := get(t, hc, srv.URL); err != nil || code != 200 {
		t.Fatalf("probe: %d %v", code, err)
	}
	if st, _ := g.State(); st != Closed {
		t.Fatalf("after a good probe: %v", st)
	}
	// 4xx and 429 are not failures.
	for _, code := range []int32{400, 404, 429, 429, 429, 429} {
		status.Store(code)
		if _, err := get(t, hc, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := g.State(); st != Closed {
		t.Errorf("4xx and 429 opened the circuit: %v", st)
	}
}

func TestBreakerLetsOneProbeAtATime(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := New(Config{Tenant: "t", Vendor: "v", Threshold: 1, OpenFor: time.Second, Now: clk.now})
	if _, err := g.allow(); err != nil {
		t.Fatal(err)
	}
	g.record(false, failure, "HTTP 503")
	clk.add(time.Second)
	probe, err := g.allow()
	if err != nil || !probe {
		t.Fatalf("first half-open call: probe %v, %v", probe, err)
	}
	if _, err := g.allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("second call during the probe: %v, want refused", err)
	}
	g.record(true, success, "")
	if probe, err := g.allow(); err != nil || probe {
		t.Fatalf("after the probe: probe %v, %v", probe, err)
	}
}

func TestNoBreakerWithNegativeThreshold(t *testing.T) {
	g := New(Config{Tenant: "t", Vendor: "v", Threshold: -1})
	for range 100 {
		g.record(false, failure, "HTTP 503")
	}
	if _, err := g.allow(); err != nil {
		t.Fatal(err)
	}
}

func TestThrottlePacesCalls(t *testing.T) {
	var status, calls atomic.Int32
	status.Store(200)
	srv := vendor(t, &status, &calls)
	g := New(Config{Tenant: "t", Vendor: "v", PerSecond: 1000, Burst: 1})
	hc := g.Client(srv.Client())
	for range 5 {
		if _, err := get(t, hc, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 5 {
		t.Errorf("calls = %d", calls.Load())
	}
	if g.limiter == nil || g.limiter.Burst() != 1 {
		t.Errorf("limiter = %v", g.limiter)
	}
}
