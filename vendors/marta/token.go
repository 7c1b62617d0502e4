package marta

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// Token scopes of POST /auth.
const (
	// ScopeCustomerSynchro is the integration's own scope, without
	// username and password: check-card and registration calls.
	ScopeCustomerSynchro = "customersynchro"
	// ScopeCustomer acts as one customer (username and password): data
	// entry (customerdatafields, GET and PUT /customer).
	ScopeCustomer = "customer"
)

// Token cache tuning.
const (
	maxRenewMargin = time.Minute      // renew a token at most this long before it expires…
	tokenTimeout   = 30 * time.Second // bound on one /auth or refresh, whoever waits for it
	pruneAbove     = 1024             // cached sessions before stale ones are swept
)

// renewMargin is how long before expiry a token of lifetime ttl is
// replaced: a quarter of its life, at most a minute.
func renewMargin(ttl time.Duration) time.Duration { return min(ttl/4, maxRenewMargin) }

// authRequest is what POST /auth is asked for.
type authRequest struct {
	scope    string
	campaign string
	device   string
	username string
	password secret.String
}

// session is a cached authentication: the JWT and the refresh token.
type session struct {
	jwt          secret.String
	renewAt      time.Time // from then on the JWT is renewed before use
	refresh      secret.String
	refreshUntil time.Time // from then on the refresh token is deemed spent
}

// authenticator performs the two token calls.
type authenticator interface {
	// auth is POST /auth.
	auth(ctx context.Context, a authRequest) (session, error)
	// refresh is POST /auth/refreshToken with s's refresh token; it returns
	// the session with a new JWT.
	refresh(ctx context.Context, a authRequest, s session) (session, error)
}

// tokenCache caches sessions per (scope, campaign, device type, username,
// password) and makes sure that at most one token request per key is in
// flight, however many callers need it at once. The password is part of the
// key (as an HMAC under a per-cache random key, never stored in clear), so a
// cached session never stands in for a wrong password.
type tokenCache struct {
	now  func() time.Time
	a    authenticator
	salt []byte

	mu       sync.Mutex
	sessions map[string]session
	flights  map[string]*flight
}

// flight is one token request and the callers waiting for it.
type flight struct {
	done    chan struct{} // closed when tok and err are set
	tok     secret.String
	err     error
	waiters int                // guarded by tokenCache.mu
	cancel  context.CancelFunc // stops the request when no one waits any more
}

func newTokenCache(now func() time.Time, a authenticator) *tokenCache {
	salt := make([]byte, 32)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24)
	return &tokenCache{now: now, a: a, salt: salt, sessions: map[string]session{}, flights: map[string]*flight{}}
}

func (c *tokenCache) key(a authRequest) string {
	m := hmac.New(sha256.New, c.salt)
	m.Write([]byte(a.password.Reveal()))
	return a.scope + "\x00" + a.campaign + "\x00" + a.device + "\x00" + a.username + "\x00" + hex.EncodeToString(m.Sum(nil))
}

// get returns a valid JWT for a: the cached one, or a renewed one (by
// refresh token while it lasts, else by /auth). Concurrent callers for the
// same key wait for one request. That request runs detached from any one
// caller's cancellation and is cancelled when the last waiter gives up, or
// after tokenTimeout; a caller whose ctx ends gets ctx.Err().
func (c *tokenCache) get(ctx context.Context, a authRequest) (secret.String, error) {
	if err := ctx.Err(); err != nil {
		return secret.String{}, err
	}
	key := c.key(a)
	c.mu.Lock()
	s, cached := c.sessions[key]
	if cached && c.now().Before(s.renewAt) {
		c.mu.Unlock()
		return s.jwt, nil
	}
	f := c.flights[key]
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTimeout)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = f
		go c.run(fctx, key, a, s, cached, f)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		c.mu.Lock()
		if f.waiters--; f.waiters == 0 && c.flights[key] == f {
			delete(c.flights, key)
			f.cancel()
		}
		c.mu.Unlock()
		return secret.String{}, ctx.Err()
	}
}

// run performs flight f: a refresh when the cached session's refresh token
// is still good, falling back to /auth when the vendor refuses it; /auth
// otherwise.
func (c *tokenCache) run(ctx context.Context, key string, a authRequest, old session, cached bool, f *flight) {
	defer f.cancel()
	var (
		s   session
		err error
	)
	if cached && !old.refresh.IsZero() && c.now().Before(old.refreshUntil) {
		s, err = c.a.refresh(ctx, a, old)
		if err != nil && refreshSpent(err) {
			s, err = c.a.auth(ctx, a)
		}
	} else {
		s, err = c.a.auth(ctx, a)
	}
	c.mu.Lock()
	if err == nil {
		c.store(key, s)
	}
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	f.tok, f.err = s.jwt, err
	close(f.done)
}

// refreshSpent reports whether a refresh failed because the vendor no
// longer accepts the refresh token (998, or any refusal that is not a
// transient or rate-limit failure): a new /auth is then due.
func refreshSpent(err error) bool {
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		return false
	}
	return ve.Code == CodeSessionExpired || (ve.Kind == vendors.Permanent && ve.Status != 0 && ve.Status != http.StatusTooManyRequests)
}

// store caches s under key, sweeping spent sessions once there are many
// (caller holds c.mu).
func (c *tokenCache) store(key string, s session) {
	if len(c.sessions) >= pruneAbove {
		now := c.now()
		for k, old := range c.sessions {
			if !now.Before(old.renewAt) && !now.Before(old.refreshUntil) {
				delete(c.sessions, k)
			}
		}
	}
	c.sessions[key] = s
}

// invalidate marks the JWT of a as refused by the vendor, if it is still the
// cached one (a token another caller renewed meanwhile is kept): the next
// get renews it, by refresh token if that still lasts.
func (c *tokenCache) invalidate(a authRequest, used secret.String) {
	key := c.key(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sessions[key]; ok && s.jwt.Reveal() == used.Reveal() {
		s.renewAt = time.Time{}
		c.sessions[key] = s
	}
}
