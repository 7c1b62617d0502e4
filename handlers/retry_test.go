package handlers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

func TestRetryPolicy(t *testing.T) {
	transient := &vendors.Error{Vendor: "v", Op: "op", Kind: vendors.Transient, Status: 503}
	permanent := &vendors.Error{Vendor: "v", Op: "op", Kind: vendors.Permanent, Status: 400}
	fast := RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, MaxElapsedTime: 200 * time.Millisecond}

	tests := []struct {
		name         string
		policy       RetryPolicy
		results      []error // returned by successive calls; the last repeats
		wantCalls    int
		wantErr      error
		wantBudget   bool
		wantFailures bool
	}{
		{name: "success at once", policy: fast, results: []error{nil}, wantCalls: 1},
		{name: "transient then success", policy: fast, results: []error{transient, transient, nil}, wantCalls: 3, wantFailures: true},
		{name: "permanent stops at once", policy: fast, results: []error{permanent}, wantCalls: 1, wantErr: permanent},
		{name: "transient forever exhausts the budget", policy: fast, results: []error{transient}, wantBudget: true, wantFailures: true},
		{name: "retry-after beyond the budget stops early", policy: fast,
			results: []error{&vendors.Error{Kind: vendors.RateLimited, Status: 429, RetryAfter: time.Hour}}, wantCalls: 1, wantBudget: true, wantFailures: true},
		{name: "non-vendor error is not retried", policy: fast, results: []error{context.Canceled}, wantCalls: 1, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			a, err := tt.policy.Do(t.Context(), func(context.Context) error {
				r := tt.results[min(calls, len(tt.results)-1)]
				calls++
				return r
			}, nil)
			if tt.wantCalls > 0 && calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if a.Count != calls {
				t.Errorf("Attempts.Count = %d, calls %d", a.Count, calls)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrBudgetExhausted); got != tt.wantBudget {
				t.Errorf("budget exhausted = %v (%v), want %v", got, err, tt.wantBudget)
			}
			if tt.wantBudget && !errors.Is(err, tt.results[len(tt.results)-1]) {
				t.Errorf("exhausted error does not wrap the last vendor error: %v", err)
			}
			if got := !a.FirstFailure.IsZero(); got != tt.wantFailures {
				t.Errorf("first failure recorded = %v, want %v", got, tt.wantFailures)
			}
			if tt.wantFailures && a.LastFailure.Before(a.FirstFailure) {
				t.Errorf("last failure %v before first %v", a.LastFailure, a.FirstFailure)
			}
		})
	}
}
