package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/guard"
)

// RetryPolicy is the budget a step gets for transient vendor failures before
// its message becomes a dead letter.
type RetryPolicy struct {
	InitialInterval time.Duration // first delay; default 200ms
	MaxInterval     time.Duration // delay cap; default 5s
	Multiplier      float64       // growth per attempt; default 2
	MaxElapsedTime  time.Duration // the budget, from the first failure; default 30s
	// RandomizationFactor jitters each delay by ± this fraction; default 0.5.
	RandomizationFactor float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialInterval <= 0 {
		p.InitialInterval = 200 * time.Millisecond
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = 5 * time.Second
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.MaxElapsedTime <= 0 {
		p.MaxElapsedTime = 30 * time.Second
	}
	if p.RandomizationFactor <= 0 {
		p.RandomizationFactor = 0.5
	}
	return p
}

// Attempts records how a retried operation went.
type Attempts struct {
	Count        int       // calls made
	FirstFailure time.Time // zero if the first call succeeded
	LastFailure  time.Time
}

// ErrBudgetExhausted wraps the last transient error of an operation that
// kept failing past the retry budget.
var ErrBudgetExhausted = errors.New("retry budget exhausted")

type budgetError struct {
	last error
	why  string
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("%s (%s): %v", ErrBudgetExhausted, e.why, e.last)
}
func (e *budgetError) Unwrap() []error {
	return []error{ErrBudgetExhausted, e.last}
}

// Do calls op until it succeeds, fails with an error that is not retryable
// (see vendors.IsRetryable), or the budget runs out. Delays grow
// exponentially with jitter (cenkalti/backoff); a vendor's Retry-After is
// honoured when it asks for longer. A Retry-After beyond the remaining
// budget ends the attempts at once instead of sleeping past the budget.
func (p RetryPolicy) Do(ctx context.Context, op func(ctx context.Context) error, onRetry func(err error, delay time.Duration)) (Attempts, error) {
	p = p.withDefaults()
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialInterval),
		backoff.WithMaxInterval(p.MaxInterval),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(p.RandomizationFactor),
		backoff.WithMaxElapsedTime(p.MaxElapsedTime),
	)
	var a Attempts
	for {
		a.Count++
		err := op(ctx)
		if err == nil {
			return a, nil
		}
		if errors.Is(err, guard.ErrOpen) || !vendors.IsRetryable(err) {
			// An open circuit is not retried here: the message is parked.
			return a, err
		}
		now := time.Now()
		if a.FirstFailure.IsZero() {
			a.FirstFailure = now
			b.Reset()
		}
		a.LastFailure = now
		delay := b.NextBackOff()
		if delay == backoff.Stop {
			return a, &budgetError{last: err, why: fmt.Sprintf("%d attempts in %s", a.Count, now.Sub(a.FirstFailure).Round(time.Millisecond))}
		}
		if ra := vendors.RetryAfterOf(err); ra > delay {
			delay = ra
		}
		if spent := now.Sub(a.FirstFailure); spent+delay > p.MaxElapsedTime {
			return a, &budgetError{last: err, why: fmt.Sprintf("%d attempts; next try in %s would pass the %s budget", a.Count, delay.Round(time.Millisecond), p.MaxElapsedTime)}
		}
		if onRetry != nil {
			onRetry(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, ctx.Err()
		case <-t.C:
		}
	}
}
