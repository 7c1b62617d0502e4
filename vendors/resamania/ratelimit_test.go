package resamania

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

func TestRateLimiterSchedule(t *testing.T) {
	l := NewRateLimiter(RateLimiterConfig{PerMinute: 5, SpikeArrest: 2, Jitter: -1})
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	key := limiterKey("k")
	take := func(now time.Time) time.Duration {
		at := l.reserve(key, now)
		l.keys[key].t = append(l.keys[key].t, at)
		return at.Sub(t0)
	}
	// Two per 100 ms, five per minute, in order of asking.
	want := []time.Duration{0, 0, 100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, time.Minute, time.Minute}
	for i, w := range want {
		if got := take(t0); got != w {
			t.Fatalf("request %d at +%v, want +%v", i, got, w)
		}
	}
	// Another key has its own budget.
	if at := l.reserve(limiterKey("other"), t0); !at.Equal(t0) {
		t.Fatalf("another key waits until %v", at)
	}
}

func TestRateLimiterJitterWidensWindows(t *testing.T) {
	l := NewRateLimiter(RateLimiterConfig{SpikeArrest: 1, PerMinute: -1}) // default jitter
	t0 := time.Now()
	key := limiterKey("k")
	l.keys[key] = &sendTimes{t: []time.Time{t0}}
	if d := l.reserve(key, t0).Sub(t0); d != spikeArrestWindow+DefaultRateJitter {
		t.Fatalf("next send after %v, want %v", d, spikeArrestWindow+DefaultRateJitter)
	}
}

func TestRateLimiterWait(t *testing.T) {
	l := NewRateLimiter(RateLimiterConfig{PerMinute: 1, SpikeArrest: -1})
	key := limiterKey("k")
	if err := l.wait(t.Context(), key, "op"); err != nil {
		t.Fatal(err)
	}
	// The next slot is a minute away: a deadline before it fails at once,
	// without taking the slot.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err := l.wait(ctx, key, "op")
	var ve *vendors.Error
	if !errors.As(err, &ve) || ve.Kind != vendors.RateLimited || ve.RetryAfter < 59*time.Second || ve.Op != "op" {
		t.Fatalf("err = %v", err)
	}
	// A caller without a deadline waits; giving up releases its slot.
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- l.wait(ctx, key, "op") }()
	for {
		l.mu.Lock()
		n := len(l.keys[key].t)
		l.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(l.keys[key].t); n != 1 {
		t.Fatalf("%d sends kept, want the released one gone", n)
	}
	if off := NewRateLimiter(RateLimiterConfig{PerMinute: -1, SpikeArrest: -1}); off.wait(t.Context(), key, "op") != nil || len(off.keys) != 0 {
		t.Fatal("a limiter with both limits off paced")
	}
}

func TestRateLimitOptions(t *testing.T) {
	shared := NewRateLimiter(RateLimiterConfig{})
	tests := []struct {
		name          string
		opts          []Option
		limiter, own  bool // a RateLimiter; a token bucket
		sharedLimiter bool
	}{
		{"default: a RateLimiter of its own", nil, true, false, false},
		{"WithRateLimiter", []Option{WithRateLimiter(shared)}, true, false, true},
		{"WithRateLimiter(nil) is the default", []Option{WithRateLimiter(nil)}, true, false, false},
		{"WithRateLimit", []Option{WithRateLimit(10, 1)}, false, true, false},
		{"WithoutRateLimit", []Option{WithoutRateLimit()}, false, false, false},
		{"the last wins", []Option{WithoutRateLimit(), WithRateLimit(10, 1), WithRateLimiter(shared)}, true, false, true},
		{"the last wins, off", []Option{WithRateLimiter(shared), WithoutRateLimit()}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(demoConfig("http://127.0.0.1:1"), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if (c.core.limiter != nil) != tt.limiter || (c.core.bucket != nil) != tt.own || (c.core.limiter == shared) != tt.sharedLimiter {
				t.Fatalf("limiter %v bucket %v", c.core.limiter, c.core.bucket)
			}
			if tt.limiter && (c.core.limiter.perMinute != DefaultRatePerMinute || c.core.limiter.spike != DefaultSpikeArrest) {
				t.Fatalf("limits %d/min %d/100ms", c.core.limiter.perMinute, c.core.limiter.spike)
			}
		})
	}
}

func TestValidateRedactsAnEchoedCode(t *testing.T) {
	const code = "949875"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			_, _ = w.Write([]byte(`{"access_token":"tok","expires_in":3600}`))
			return
		}
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"@type":"ConstraintViolationList","hydra:description":"code: 949875 is not valid",` +
			`"violations":[{"propertyPath":"code","message":"949875 is not valid"}]}`))
	}))
	defer srv.Close()
	c, err := NewClient(demoConfig(srv.URL), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ValidateSignatureRequest(t.Context(), paris, "/demoapi/signature_requests/1", code)
	ve := vendorError(t, err, vendors.Permanent, 400)
	if ve.Code != CodeValidation || len(ve.Fields) != 1 || ve.Fields[0].Field != "code" {
		t.Fatalf("error = %+v", ve)
	}
	if s := err.Error() + ve.Fields[0].Message; strings.Contains(s, code) {
		t.Fatalf("the error shows the code: %s", s)
	}
}

func TestRedactSecret(t *testing.T) {
	if redactSecret(nil, "1") != nil {
		t.Fatal("nil")
	}
	plain := errors.New("x 123 y")
	if got := redactSecret(plain, ""); got != plain {
		t.Fatal("an empty secret changed the error")
	}
	if got := redactSecret(plain, "123"); strings.Contains(got.Error(), "123") {
		t.Fatalf("plain error: %v", got)
	}
	ve := &vendors.Error{Vendor: Vendor, Kind: vendors.Permanent, Code: CodeInvalidCode, Message: "bad 123", Err: errors.New("io 123")}
	got := redactSecret(ve, "123")
	if !IsInvalidCode(got) || strings.Contains(got.Error(), "123") || vendors.IsRetryable(got) {
		t.Fatalf("vendor error: %v", got)
	}
	// A message key is kept whatever the secret: classification must not break.
	ve = &vendors.Error{Vendor: Vendor, Kind: vendors.Permanent, Code: CodeInvalidCode}
	if got := redactSecret(ve, "code"); !IsInvalidCode(got) {
		t.Fatalf("the code was changed: %v", got)
	}
}
