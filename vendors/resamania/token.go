package resamania

import (
	"context"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/secret"
)

// OAuth2 grant types the token endpoint accepts.
const (
	GrantClientCredentials  = "client_credentials"
	GrantContactCredentials = "http://contactclientcredentials"
	GrantClubCredentials    = "http://clubclientcredentials"
)

// Grant is the OAuth2 grant a Client authenticates with. The zero Grant is
// ClientCredentials. Tokens are cached per grant and subject.
type Grant struct {
	typ     string
	param   string // the form field carrying subject
	subject string
}

// ClientCredentials is the API client's own grant: the broadest scope, the
// one for searches and contact creation.
func ClientCredentials() Grant { return Grant{typ: GrantClientCredentials} }

// ContactCredentials acts as the contact with that email (which must exist).
// Such a token cannot search contacts (403 CodeUnauthorizedEndpoint); a
// migration needs it, authenticated as the source contact.
func ContactCredentials(email string) Grant {
	return Grant{typ: GrantContactCredentials, param: "email", subject: email}
}

// ClubCredentials acts as the club with that IRI ("/{clientToken}/clubs/{id}").
func ClubCredentials(clubIRI string) Grant {
	return Grant{typ: GrantClubCredentials, param: "clubId", subject: clubIRI}
}

// Type returns the grant_type sent to the token endpoint.
func (g Grant) Type() string {
	if g.typ == "" {
		return GrantClientCredentials
	}
	return g.typ
}

// String returns the grant type only: the subject (an email) is personal
// data and stays out of logs.
func (g Grant) String() string { return g.Type() }

func (g Grant) key() string { return g.Type() + "\x00" + g.subject }

// Token cache tuning.
const (
	maxRefreshMargin = time.Minute      // refresh at most this long before expiry…
	tokenTimeout     = 30 * time.Second // bound on one token request, whoever waits for it
	pruneAbove       = 1024             // cached tokens before expired ones are swept
)

// cachedToken is a token and the time from which it must be refreshed.
type cachedToken struct {
	value     secret.String
	refreshAt time.Time
}

// fetchFunc asks the token endpoint for a token of grant g and returns it
// with its lifetime.
type fetchFunc func(ctx context.Context, g Grant) (secret.String, time.Duration, error)

// tokenCache caches bearer tokens per (grant type, subject) and makes sure
// that at most one token request per key is in flight, however many callers
// need it at once.
type tokenCache struct {
	now   func() time.Time
	fetch fetchFunc

	mu      sync.Mutex
	tokens  map[string]cachedToken
	flights map[string]*flight
}

// flight is one token request and the callers waiting for it.
type flight struct {
	done    chan struct{} // closed when tok and err are set
	tok     secret.String
	err     error
	waiters int                // guarded by tokenCache.mu
	cancel  context.CancelFunc // stops the request when no one waits any more
}

func newTokenCache(now func() time.Time, fetch fetchFunc) *tokenCache {
	return &tokenCache{now: now, fetch: fetch, tokens: map[string]cachedToken{}, flights: map[string]*flight{}}
}

// refreshMargin is how long before expiry a token of lifetime ttl is
// replaced: a quarter of its life, at most a minute.
func refreshMargin(ttl time.Duration) time.Duration { return min(ttl/4, maxRefreshMargin) }

// get returns a valid token for g, fetching one if none is cached or the
// cached one is due for refresh. Concurrent callers for the same key wait
// for one request. That request runs detached from any one caller's
// cancellation (the others still want its result) and is cancelled when
// the last waiter gives up, or after tokenTimeout; a caller whose ctx ends
// gets ctx.Err().
func (c *tokenCache) get(ctx context.Context, g Grant) (secret.String, error) {
	if err := ctx.Err(); err != nil {
		return secret.String{}, err
	}
	key := g.key()
	c.mu.Lock()
	if t, ok := c.tokens[key]; ok && c.now().Before(t.refreshAt) {
		c.mu.Unlock()
		return t.value, nil
	}
	f := c.flights[key]
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTimeout)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = f
		go c.run(fctx, key, g, f)
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

// run performs flight f's token request and stores the token.
func (c *tokenCache) run(ctx context.Context, key string, g Grant, f *flight) {
	defer f.cancel()
	obtained := c.now()
	tok, ttl, err := c.fetch(ctx, g)
	c.mu.Lock()
	if err == nil {
		c.store(key, cachedToken{value: tok, refreshAt: obtained.Add(ttl - refreshMargin(ttl))})
	}
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// store caches t under key, sweeping stale tokens once there are many
// (caller holds c.mu).
func (c *tokenCache) store(key string, t cachedToken) {
	if len(c.tokens) >= pruneAbove {
		now := c.now()
		for k, old := range c.tokens {
			if !now.Before(old.refreshAt) {
				delete(c.tokens, k)
			}
		}
	}
	c.tokens[key] = t
}

// invalidate drops the cached token of g if it is still used: the vendor
// refused it. A token another caller has refreshed meanwhile is kept.
func (c *tokenCache) invalidate(g Grant, used secret.String) {
	key := g.key()
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tokens[key]; ok && t.value.Reveal() == used.Reveal() {
		delete(c.tokens, key)
	}
}
