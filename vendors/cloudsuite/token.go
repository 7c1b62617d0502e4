package cloudsuite

import (
	"context"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/secret"
)

// Token cache tuning.
const (
	// DefaultTokenTTL is the lifetime assumed for a token whose reply names
	// none (Keycloak's default access token lifespan).
	DefaultTokenTTL  = 300 * time.Second
	maxRefreshMargin = 30 * time.Second // refresh at most this long before expiry…
	tokenTimeout     = 30 * time.Second // bound on one token request, whoever waits for it
)

// refreshMargin is how long before expiry a token of lifetime ttl is
// replaced: a tenth of its life, at most 30 s.
func refreshMargin(ttl time.Duration) time.Duration { return min(ttl/10, maxRefreshMargin) }

// fetchTokenFunc asks the token endpoint for a token and returns it with
// its lifetime.
type fetchTokenFunc func(ctx context.Context) (secret.String, time.Duration, error)

// tokenSource caches the client's bearer token and makes sure that at most
// one token request is in flight, however many callers need a token at
// once.
type tokenSource struct {
	now   func() time.Time
	fetch fetchTokenFunc

	mu        sync.Mutex
	tok       secret.String
	refreshAt time.Time    // from then on the token is replaced before use
	flight    *tokenFlight // the token request in flight, if any
}

// tokenFlight is one token request and the callers waiting for it.
type tokenFlight struct {
	done    chan struct{} // closed when tok and err are set
	tok     secret.String
	err     error
	waiters int                // guarded by tokenSource.mu
	cancel  context.CancelFunc // stops the request when no one waits any more
}

func newTokenSource(now func() time.Time, fetch fetchTokenFunc) *tokenSource {
	return &tokenSource{now: now, fetch: fetch}
}

// get returns a valid token, fetching one if none is cached or the cached
// one is due for refresh. Concurrent callers wait for one request. That
// request runs detached from any one caller's cancellation (the others
// still want its result) and is cancelled when the last waiter gives up,
// or after tokenTimeout; a caller whose ctx ends gets ctx.Err().
func (s *tokenSource) get(ctx context.Context) (secret.String, error) {
	if err := ctx.Err(); err != nil {
		return secret.String{}, err
	}
	s.mu.Lock()
	if !s.tok.IsZero() && s.now().Before(s.refreshAt) {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	f := s.flight
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTimeout)
		f = &tokenFlight{done: make(chan struct{}), cancel: cancel}
		s.flight = f
		go s.run(fctx, f)
	}
	f.waiters++
	s.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		s.mu.Lock()
		if f.waiters--; f.waiters == 0 && s.flight == f {
			s.flight = nil
			f.cancel()
		}
		s.mu.Unlock()
		return secret.String{}, ctx.Err()
	}
}

// run performs flight f's token request and caches the token.
func (s *tokenSource) run(ctx context.Context, f *tokenFlight) {
	defer f.cancel()
	obtained := s.now()
	tok, ttl, err := s.fetch(ctx)
	s.mu.Lock()
	if err == nil && s.flight == f {
		s.tok, s.refreshAt = tok, obtained.Add(ttl-refreshMargin(ttl))
	}
	if s.flight == f {
		s.flight = nil
	}
	s.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// invalidate drops the cached token if it is still used: the API refused
// it. A token another caller has refreshed meanwhile is kept.
func (s *tokenSource) invalidate(used secret.String) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Reveal() == used.Reveal() {
		s.tok, s.refreshAt = secret.String{}, time.Time{}
	}
}
