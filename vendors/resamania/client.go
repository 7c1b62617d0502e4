// Package resamania is the client of Resamania (Stadline), the
// fitness-club management API behind the Gravitee gateway, and a simulator
// of that API for tests, the demo and standalone use.
//
// The client authenticates with OAuth2 (client credentials by default; see
// Grant for the contact- and club-scoped grants), caches tokens per grant
// and subject, refreshes them before they expire, and re-authenticates once
// when the API answers 401. It paces its requests under the gateway's
// limits per API key (see RateLimiter; on by default), so that the service
// does not provoke 429s itself. Every reply is classified once, by
// CheckResponse, into a *vendors.Error: permanent, transient or
// rate-limited.
//
// References to resources are IRIs ("/{clientToken}/clubs/1357"): a bare id
// gives 404. ClubIRI, NetworkNodeIRI and ContactIRI build them.
package resamania

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// Operation names, the Op of the errors the client returns.
const (
	OpToken               = "oauth.token"
	OpFindContactsByEmail = "contacts.find_by_email"
	OpSearchNetwork       = "network.contact_search"
	OpCreateContact       = "contacts.create"
)

// Defaults.
const (
	// DefaultTokenPath is the token endpoint under BaseURL; {clientToken}
	// is replaced. Some environments serve it at "/oauth/v2/token".
	DefaultTokenPath = "/{clientToken}/oauth/v2/token"
	// DefaultTimeout is the timeout of the HTTP client NewClient makes when
	// WithHTTPClient is not given.
	DefaultTimeout = 30 * time.Second
	// defaultTokenTTL is assumed when the token endpoint gives no expires_in.
	defaultTokenTTL = time.Hour
)

// Config is one Resamania account (a clientToken) and its credentials.
type Config struct {
	// BaseURL is the gateway up to the environment, e.g.
	// "https://gateway.prod.gravitee.stadline.tech/resa2-staging";
	// "/{clientToken}" is appended for the API.
	BaseURL string `json:"baseURL" yaml:"baseURL"`
	// ClientToken names the account, e.g. "demoapi".
	ClientToken string `json:"clientToken" yaml:"clientToken"`
	// ClientID and ClientSecret are the OAuth2 client's credentials.
	ClientID     string        `json:"clientId" yaml:"clientId"`
	ClientSecret secret.String `json:"clientSecret" yaml:"clientSecret"`
	// APIKey is the gateway's key, sent as X-Gravitee-Api-Key on every call.
	APIKey secret.String `json:"apiKey" yaml:"apiKey"`
}

var clientTokenRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// Validate reports the first missing or malformed field, by its
// configuration key.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errors.New("resamania: baseURL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("resamania: baseURL %q is not an http(s) URL without query", c.BaseURL)
	}
	switch {
	case c.ClientToken == "":
		return errors.New("resamania: clientToken is required")
	case !clientTokenRE.MatchString(c.ClientToken):
		return fmt.Errorf("resamania: clientToken %q may hold only letters, digits and . _ ~ -", c.ClientToken)
	case c.ClientID == "":
		return errors.New("resamania: clientId is required")
	case c.ClientSecret.IsZero():
		return errors.New("resamania: clientSecret is required")
	case c.APIKey.IsZero():
		return errors.New("resamania: apiKey is required")
	}
	return nil
}

// Option configures a Client.
type Option func(*options)

type options struct {
	hc        *http.Client
	now       func() time.Time
	tokenPath string
	baseURL   string
	limiter   *RateLimiter  // the shared limiter (WithRateLimiter)
	bucket    *rate.Limiter // this client's own limiter (WithRateLimit)
	noLimit   bool          // WithoutRateLimit
	userAgent string
}

// WithHTTPClient sets the HTTP client; its Timeout bounds each request. The
// default has DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc != nil {
			o.hc = hc
		}
	}
}

// WithClock sets the clock used for token expiry and rate-limit resets.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithTokenPath sets the token endpoint: a path under BaseURL where
// "{clientToken}" is replaced (default DefaultTokenPath; the alternative
// "/oauth/v2/token"), or an absolute http(s) URL.
func WithTokenPath(p string) Option { return func(o *options) { o.tokenPath = p } }

// WithBaseURL overrides Config.BaseURL (tests point it at a simulator).
func WithBaseURL(u string) Option { return func(o *options) { o.baseURL = u } }

// WithRateLimiter makes the client (and every view As returns) wait for l
// before each request, token requests included. Give the same RateLimiter
// to every client of the process: it keeps one budget per API key, shared
// by all the clients of that key. A nil l is the default: NewClient creates
// a RateLimiter of its own with the gateway's guideline (see
// RateLimiterConfig). The last of WithRateLimiter, WithRateLimit and
// WithoutRateLimit wins.
func WithRateLimiter(l *RateLimiter) Option {
	return func(o *options) { o.limiter, o.bucket, o.noLimit = l, nil, false }
}

// WithRateLimit replaces the default RateLimiter with a token bucket of
// this client's own (shared by the views As returns, not with other
// clients): at most r requests per second, bursts of burst, token requests
// included. A call whose context deadline is too near to wait gets a
// RateLimited error.
func WithRateLimit(r rate.Limit, burst int) Option {
	return func(o *options) { o.bucket, o.limiter, o.noLimit = rate.NewLimiter(r, max(burst, 1)), nil, false }
}

// WithoutRateLimit turns the client-side rate limit off: the client sends
// as fast as it is called and the gateway answers 429 (RateLimited, with
// RetryAfter) when the API key goes over its limits. For load tests against
// a simulator without limits.
func WithoutRateLimit() Option {
	return func(o *options) { o.limiter, o.bucket, o.noLimit = nil, nil, true }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// Scope is the club context of a call, sent as the x-user-club-id and
// x-user-network-node-id headers (IRIs). An empty field sends no header.
// Resamania resolves searches and creations within it; wrong values give
// 404.
type Scope struct {
	ClubID        string // club IRI, e.g. "/demoapi/clubs/1357"
	NetworkNodeID string // network node IRI; required for club chains
}

// Client calls one Resamania account. It is safe for concurrent use.
type Client struct {
	core  *core
	grant Grant
}

// core is what every view of a Client (see As) shares.
type core struct {
	cfg       Config
	hc        *http.Client
	now       func() time.Time
	apiBase   string // BaseURL + "/" + clientToken
	tokenURL  string
	limiter   *RateLimiter      // nil: none, or bucket
	keyID     [sha256.Size]byte // the API key as limiter knows it
	bucket    *rate.Limiter     // WithRateLimit
	userAgent string
	tokens    *tokenCache
}

// NewClient validates cfg and returns a client authenticating with
// ClientCredentials. Unless an option says otherwise it paces its requests
// with a RateLimiter of its own at the gateway's guideline (1000 requests a
// minute, 30 per 100 ms): pass one RateLimiter to every client of the
// process with WithRateLimiter so that clients of the same API key share
// the budget.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	o := options{now: time.Now, tokenPath: DefaultTokenPath, userAgent: "registrar-resamania/1"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.baseURL != "" {
		cfg.BaseURL = o.baseURL
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: DefaultTimeout}
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	tokenURL := strings.ReplaceAll(o.tokenPath, "{clientToken}", cfg.ClientToken)
	if !strings.HasPrefix(tokenURL, "http://") && !strings.HasPrefix(tokenURL, "https://") {
		tokenURL = base + "/" + strings.TrimLeft(tokenURL, "/")
	}
	if _, err := url.Parse(tokenURL); err != nil {
		return nil, fmt.Errorf("resamania: token path: %w", err)
	}
	if o.limiter == nil && o.bucket == nil && !o.noLimit {
		o.limiter = NewRateLimiter(RateLimiterConfig{})
	}
	c := &core{
		cfg: cfg, hc: o.hc, now: o.now, apiBase: base + "/" + cfg.ClientToken, tokenURL: tokenURL,
		limiter: o.limiter, keyID: limiterKey(cfg.APIKey.Reveal()), bucket: o.bucket, userAgent: o.userAgent,
	}
	c.tokens = newTokenCache(o.now, c.fetchToken)
	return &Client{core: c, grant: ClientCredentials()}, nil
}

// As returns a view of the client that authenticates with g. Views share
// the HTTP client, the rate limiter and the token cache (tokens are cached
// per grant and subject).
func (c *Client) As(g Grant) *Client {
	if g.typ == "" {
		g = ClientCredentials()
	}
	return &Client{core: c.core, grant: g}
}

// ClientToken returns the account's clientToken, the first segment of its IRIs.
func (c *Client) ClientToken() string { return c.core.cfg.ClientToken }

// ClubIRI returns the IRI of club id in this account.
func (c *Client) ClubIRI(id int) string { return ClubIRI(c.core.cfg.ClientToken, id) }

// NetworkNodeIRI returns the IRI of network node id in this account.
func (c *Client) NetworkNodeIRI(id int) string { return NetworkNodeIRI(c.core.cfg.ClientToken, id) }

// do sends one API call: path is under "/{clientToken}", in (if not nil) is
// sent as JSON, a 2xx body is decoded into out (if not nil). A 401 drops the
// cached token and retries once with a fresh one.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, s Scope, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("resamania %s: encode request: %w", op, err)
		}
	}
	u := c.core.apiBase + path
	if len(query) > 0 {
		u += "?" + query.Encode() // QueryEscape: "+" → %2B, "@" → %40
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.core.tokens.get(ctx, c.grant)
		if err != nil {
			return err
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(vendors.WithOp(ctx, op), method, u, rd)
		if err != nil {
			return fmt.Errorf("resamania %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		req.Header.Set("Accept", "application/ld+json, application/json;q=0.9")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if s.ClubID != "" {
			req.Header.Set("x-user-club-id", s.ClubID)
		}
		if s.NetworkNodeID != "" {
			req.Header.Set("x-user-network-node-id", s.NetworkNodeID)
		}
		resp, err := c.core.send(ctx, op, req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 1 {
			discard(resp)
			c.core.tokens.invalidate(c.grant, tok)
			continue
		}
		return c.core.read(op, resp, out)
	}
}

// send adds the gateway headers, waits for the rate limiter and sends req.
// A transport failure is classified against ctx (the caller's context: its
// own cancellation is returned as is).
func (c *core) send(ctx context.Context, op string, req *http.Request) (*http.Response, error) {
	req.Header.Set("X-Gravitee-Api-Key", c.cfg.APIKey.Reveal())
	req.Header.Set("User-Agent", c.userAgent)
	if err := c.wait(req.Context(), op); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, vendors.TransportError(ctx, Vendor, op, redactURL(err))
	}
	return resp, nil
}

// wait blocks until the client-side rate limiter allows a request.
func (c *core) wait(ctx context.Context, op string) error {
	if c.limiter != nil {
		return c.limiter.wait(ctx, c.keyID, op)
	}
	if c.bucket == nil {
		return nil
	}
	now := time.Now() // the limiter paces in real time, whatever WithClock says
	r := c.bucket.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
		r.CancelAt(now)
		return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.RateLimited, Code: "client_rate_limited",
			Message: "client-side rate limit: the context deadline is too near to wait", RetryAfter: d}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// read classifies resp, decodes a 2xx body into out and closes the body.
func (c *core) read(op string, resp *http.Response, out any) error {
	defer discard(resp)
	if err := checkResponse(resp, c.now()); err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) {
			ve.Op = op
		}
		return err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSuccessBody+1))
	if err != nil {
		return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: resp.StatusCode,
			Code: CodeInvalidAnswer, Message: "reading the reply failed", Err: err}
	}
	if len(b) > maxSuccessBody {
		return invalidAnswer(op, resp.StatusCode, "the reply is larger than "+strconv.Itoa(maxSuccessBody>>20)+" MiB", nil)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return invalidAnswer(op, resp.StatusCode, "the reply is not the expected JSON", err)
	}
	return nil
}

// invalidAnswer is a 2xx reply the client cannot use: classified Transient
// (a gateway or proxy page may be in the way). Retrying a create after it is
// safe: a second POST gets email-already-used.
func invalidAnswer(op string, status int, msg string, err error) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: status,
		Code: CodeInvalidAnswer, Message: msg, Err: err}
}

// discard drains a little of the body, so the connection can be reused,
// and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
}

// redactURL removes the query (emails) from the URL a *url.Error names.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i] + "?…"
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}

// tokenReply is the token endpoint's answer.
type tokenReply struct {
	AccessToken string      `json:"access_token"`
	ExpiresIn   json.Number `json:"expires_in"`
	TokenType   string      `json:"token_type"`
}

// fetchToken asks the token endpoint for a token of grant g.
func (c *core) fetchToken(ctx context.Context, g Grant) (secret.String, time.Duration, error) {
	form := url.Values{
		"grant_type":    {g.Type()},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret.Reveal()},
	}
	if g.param != "" {
		form.Set(g.param, g.subject)
	}
	req, err := http.NewRequestWithContext(vendors.WithOp(ctx, OpToken), http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return secret.String{}, 0, fmt.Errorf("resamania %s: %w", OpToken, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// The fetch runs detached from the caller (see tokenCache.get): any
	// transport failure here is the vendor's or the network's.
	resp, err := c.send(context.Background(), OpToken, req)
	if err != nil {
		return secret.String{}, 0, err
	}
	var tr tokenReply
	if err := c.read(OpToken, resp, &tr); err != nil {
		return secret.String{}, 0, err
	}
	if tr.AccessToken == "" {
		return secret.String{}, 0, invalidAnswer(OpToken, resp.StatusCode, "the token reply has no access_token", nil)
	}
	ttl := defaultTokenTTL
	if secs, err := tr.ExpiresIn.Float64(); err == nil && secs > 0 {
		ttl = time.Duration(secs * float64(time.Second))
	}
	return secret.New(tr.AccessToken), ttl, nil
}

// invalidArgument is a call the client refuses to send.
func invalidArgument(op, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Permanent, Code: "invalid_argument", Message: msg}
}
