package fault

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// okHandler answers 200 "ok" and counts the requests that reach it.
type okHandler struct{ n atomic.Int64 }

func (h *okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.n.Add(1)
	_, _ = io.WriteString(w, "ok")
}

func serve(t *testing.T, i *Injector, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	i.Wrap(&okHandler{}).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	return rec
}

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantStatus int
		wantBody   string
		wantRetry  string
	}{
		{"no faults", Config{}, 200, "ok", ""},
		{"error", Config{ErrorRate: 1}, 503, `{"message":"injected fault"}`, ""},
		{"rate limit default retry", Config{RateLimitRate: 1}, 429, `{"message":"injected rate limit"}`, "1"},
		{"rate limit rounds up", Config{RateLimitRate: 1, RetryAfter: 1500 * time.Millisecond}, 429, "", "2"},
		{"timeout ends after HangFor", Config{TimeoutRate: 1, HangFor: 10 * time.Millisecond}, 504, `{"message":"injected timeout"}`, ""},
		{"excluded path passes", Config{ErrorRate: 1, Exclude: []string{"/health"}}, 200, "ok", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/x"
			if len(tt.cfg.Exclude) > 0 {
				path = tt.cfg.Exclude[0] + "/z"
			}
			rec := serve(t, New(tt.cfg), path)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if body := strings.TrimSpace(rec.Body.String()); tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body = %s, want %s", body, tt.wantBody)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
}

func TestLatencyIsAdded(t *testing.T) {
	i := New(Config{Latency: 30 * time.Millisecond})
	start := time.Now()
	if rec := serve(t, i, "/"); rec.Code != 200 {
		t.Fatalf("status = %d", rec.Code)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("answered after %v, want at least the latency", d)
	}
}

func TestLatencyRespectsCancellation(t *testing.T) {
	i := New(Config{Latency: time.Hour})
	h := &okHandler{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.Wrap(h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
	}()
	cancel()
	<-done // would hang for an hour if the latency ignored the context
	if h.n.Load() != 0 {
		t.Fatal("a cancelled request reached the handler")
	}
}

func TestWaitsEndWhenClientGivesUp(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		body bool
	}{
		{"timeout GET", Config{TimeoutRate: 1, HangFor: time.Hour}, false},
		// net/http notices a gone client only once the body is read.
		{"timeout POST", Config{TimeoutRate: 1, HangFor: time.Hour}, true},
		{"latency POST", Config{Latency: time.Hour}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &okHandler{}
			srv := httptest.NewServer(New(tt.cfg).Wrap(h))
			c := &http.Client{Timeout: 50 * time.Millisecond}
			var err error
			var resp *http.Response
			if tt.body {
				resp, err = c.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("a=b"))
			} else {
				resp, err = c.Get(srv.URL)
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got status %d, want a client timeout", resp.StatusCode)
			}
			done := make(chan struct{})
			go func() { srv.Close(); close(done) }() // waits for the handler to return
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				t.Fatal("the handler still waits after its client gave up")
			}
			if h.n.Load() != 0 {
				t.Fatal("the request reached the handler")
			}
		})
	}
}

func TestBufferedBodyReachesHandler(t *testing.T) {
	var got string
	h := New(Config{Latency: time.Millisecond}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("grant_type=x")))
	if got != "grant_type=x" {
		t.Fatalf("handler read %q", got)
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	for range 1000 {
		d := delay(10*time.Millisecond, 4*time.Millisecond)
		if d < 6*time.Millisecond || d > 14*time.Millisecond {
			t.Fatalf("delay %v outside 10ms ± 4ms", d)
		}
	}
	if d := delay(time.Millisecond, 10*time.Millisecond); d < 0 {
		t.Fatalf("delay %v is negative", d)
	}
}

func TestRatesAreApproximatelyHonoured(t *testing.T) {
	i := New(Config{ErrorRate: 0.25, RateLimitRate: 0.25})
	counts := map[int]int{}
	const n = 4000
	for range n {
		counts[serve(t, i, "/").Code]++
	}
	for _, code := range []int{200, 429, 503} {
		want := map[int]int{200: n / 2, 429: n / 4, 503: n / 4}[code]
		if got := counts[code]; got < want*8/10 || got > want*12/10 {
			t.Errorf("status %d: %d of %d, want about %d", code, got, n, want)
		}
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		want      int
		wantRetry bool
	}{
		{"default 503", 0, 503, false},
		{"429 carries Retry-After", 429, 429, true},
		{"any status", 500, 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := New(Config{Exclude: []string{"/admin"}})
			i.FailNext(2, tt.status)
			if rec := serve(t, i, "/admin/x"); rec.Code != 200 {
				t.Fatalf("excluded path: status %d", rec.Code)
			}
			for n := range 2 {
				rec := serve(t, i, "/")
				if rec.Code != tt.want {
					t.Fatalf("request %d: status %d, want %d", n, rec.Code, tt.want)
				}
				if got := rec.Header().Get("Retry-After") != ""; got != tt.wantRetry {
					t.Errorf("Retry-After present = %v, want %v", got, tt.wantRetry)
				}
			}
			if rec := serve(t, i, "/"); rec.Code != 200 {
				t.Fatalf("third request: status %d, want 200", rec.Code)
			}
			if p := i.PendingFailures(); p != 0 {
				t.Fatalf("PendingFailures = %d", p)
			}
		})
	}
}

func TestSetNormalizes(t *testing.T) {
	i := New(Config{})
	i.Set(Config{ErrorRate: 2, RateLimitRate: -1, TimeoutRate: 2, Latency: -time.Second})
	c := i.Config()
	if c.ErrorRate != 0.5 || c.RateLimitRate != 0 || c.TimeoutRate != 0.5 || c.Latency != 0 {
		t.Fatalf("normalized = %+v", c)
	}
	if c.RetryAfter != DefaultRetryAfter || c.HangFor != DefaultHangFor {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"all rates summing to 1", Config{ErrorRate: 0.5, RateLimitRate: 0.25, TimeoutRate: 0.25}, true},
		{"rate above 1", Config{ErrorRate: 1.5}, false},
		{"negative rate", Config{TimeoutRate: -0.1}, false},
		{"sum above 1", Config{ErrorRate: 0.6, RateLimitRate: 0.6}, false},
		{"negative latency", Config{Latency: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestAdmin(t *testing.T) {
	i := New(Config{})
	admin := i.ServeAdmin()
	call := func(method, body string) (int, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, "/_sim/faults", strings.NewReader(body)))
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: body %q: %v", method, rec.Body, err)
		}
		return rec.Code, m
	}

	if code, m := call("GET", ""); code != 200 || m["latency"] != "0s" || m["retryAfter"] != "1s" {
		t.Fatalf("GET = %d %v", code, m)
	}
	if code, m := call("PUT", `{"latency":"50ms","errorRate":0.1}`); code != 200 || m["latency"] != "50ms" || m["errorRate"] != 0.1 {
		t.Fatalf("PUT = %d %v", code, m)
	}
	// A partial update keeps the other fields; numbers are milliseconds.
	if code, m := call("PATCH", `{"jitter":5}`); code != 200 || m["latency"] != "50ms" || m["jitter"] != "5ms" {
		t.Fatalf("PATCH = %d %v", code, m)
	}
	for _, bad := range []string{`{"errorRate":2}`, `{"latency":"soon"}`, `{"unknown":1}`, `not json`} {
		if code, _ := call("PUT", bad); code != 400 {
			t.Errorf("PUT %s = %d, want 400", bad, code)
		}
	}
	if c := i.Config(); c.Latency != 50*time.Millisecond || c.ErrorRate != 0.1 {
		t.Fatalf("a refused PUT changed the config: %+v", c)
	}
	if code, m := call("POST", `{"failNext":3,"status":429}`); code != 200 || m["pendingFailures"] != 3.0 {
		t.Fatalf("POST = %d %v", code, m)
	}
	if code, _ := call("POST", `{"status":429}`); code != 400 {
		t.Fatalf("POST without failNext = %d, want 400", code)
	}
	if code, m := call("DELETE", ""); code != 200 || m["latency"] != "0s" || m["pendingFailures"] != 0.0 {
		t.Fatalf("DELETE = %d %v", code, m)
	}
	if code, _ := call("OPTIONS", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("OPTIONS = %d", code)
	}
}

func TestConcurrentUse(t *testing.T) {
	i := New(Config{})
	h := i.Wrap(&okHandler{})
	var wg sync.WaitGroup
	for n := range 8 {
		wg.Go(func() {
			for k := range 200 {
				switch {
				case n == 0 && k%10 == 0:
					i.Set(Config{ErrorRate: 0.1})
				case n == 1 && k%10 == 0:
					i.FailNext(1, 0)
				default:
					h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
				}
			}
		})
	}
	wg.Wait()
}
