// Package marta is the client of MARTA (KeyX, successor of FidelyNET), the
// loyalty-card platform's Customer API, and a simulator of that API for
// tests, the demo and standalone use.
//
// The sign-up flows the client serves (see the vendor's "Onboarding area
// riservata" guide):
//
//	CheckCard ─┬─ BranchNew        → VerifyEmail → RegisterWithCode ──────────────┐
//	           ├─ BranchHasCard    → GenerateVerificationCode → ChangeCredentialsWithCode ┤
//	           └─ BranchRegistered → log in                                        │
//	                              data entry: DataFields, Customer, UpdateCustomer ◄┘
//
// The client authenticates with POST /auth and the API key: scope
// "customersynchro" (no username or password) for the check and
// registration calls, scope "customer" (the customer's username and
// password) for data entry. Tokens are cached per scope, campaign, device
// type, username and password; a JWT (15 minutes) is renewed shortly before
// it expires with POST /auth/refreshToken while the refresh token (60
// minutes) lasts, and with a new /auth afterwards. A call answered
// AnswerCode 998 (session expired) re-authenticates and is retried once.
//
// Every reply is classified once, by CheckResponse, into a *vendors.Error
// whose Code is MARTA's AnswerCode ("315"): see the Code constants.
// Passwords, verification codes, tokens and the API key are secret.String
// and never appear in an error.
package marta

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// Operation names, the Op of the errors the client returns.
const (
	OpAuth              = "auth"
	OpRefreshToken      = "auth.refresh_token"
	OpCheckCard         = "customer.checkcard"
	OpVerifyEmail       = "customer.verifyemail"
	OpRegister          = "customer.registration_with_code"
	OpGenerateCode      = "customer.generate_verification_code"
	OpChangeCredentials = "customer.change_credentials_with_code"
	OpDataFields        = "customer.datafields"
	OpGetCustomer       = "customer.get"
	OpUpdateCustomer    = "customer.update"
)

const (
	defaultJWTTTL        = 15 * time.Minute // when the reply gives neither expiresIn nor a JWT exp claim
	defaultRefreshTTL    = 60 * time.Minute // when the reply gives no refreshTokenExpiresIn
	defaultUserAgent     = "registrar-marta/1"
	maxSuccessBodyReport = maxReplyBody >> 20 // MiB, for the error message
)

// DefaultTimeout is the timeout of the HTTP client NewClient makes when
// WithHTTPClient is not given.
const DefaultTimeout = 30 * time.Second

// Device types of the devicetype parameter.
const (
	DeviceBrowser = 1
	DeviceAndroid = 2
	DeviceIOS     = 3
)

// Config is one MARTA Customer API account.
type Config struct {
	// BaseURL is the API root, e.g. "https://martaapidemo.keyx.it".
	BaseURL string `json:"baseURL" yaml:"baseURL"`
	// APIKey is sent as x-api-key.
	APIKey secret.String `json:"apiKey" yaml:"apiKey"`
}

// Validate reports the first missing or malformed field, by its
// configuration key.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errors.New("marta: baseURL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("marta: baseURL %q is not an http(s) URL without query", c.BaseURL)
	}
	if c.APIKey.IsZero() {
		return errors.New("marta: apiKey is required")
	}
	return nil
}

// Option configures a Client.
type Option func(*options)

type options struct {
	hc  *http.Client
	now func() time.Time
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

// WithClock sets the clock used for token expiry.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Session is the context of a sign-up: the brand's campaign and the device
// the customer uses.
type Session struct {
	CampaignID string
	// DeviceType is DeviceBrowser (also for 0), DeviceAndroid or DeviceIOS;
	// sent as "1", "2" or "3".
	DeviceType int
}

// device returns the devicetype parameter.
func (s Session) device() (string, bool) {
	switch s.DeviceType {
	case 0:
		return "1", true
	case DeviceBrowser, DeviceAndroid, DeviceIOS:
		return strconv.Itoa(s.DeviceType), true
	}
	return "", false
}

// Client calls one MARTA account. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   string
	hc     *http.Client
	now    func() time.Time
	tokens *tokenCache
}

// NewClient validates cfg and returns a client.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: DefaultTimeout}
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), hc: o.hc, now: o.now}
	c.tokens = newTokenCache(o.now, c)
	return c, nil
}

// synchro is the customersynchro authentication of s.
func (c *Client) synchro(op string, s Session) (authRequest, error) {
	return c.authFor(op, s, ScopeCustomerSynchro, "", secret.String{})
}

// authFor checks s and builds the authentication of a call.
func (c *Client) authFor(op string, s Session, scope, username string, password secret.String) (authRequest, error) {
	dev, ok := s.device()
	switch {
	case !ok:
		return authRequest{}, invalidArgument(op, "device type must be 1 (browser), 2 (Android) or 3 (iOS)")
	case strings.TrimSpace(s.CampaignID) == "":
		return authRequest{}, invalidArgument(op, "campaign id is required")
	case scope == ScopeCustomer && (username == "" || password.IsZero()):
		return authRequest{}, invalidArgument(op, "username and password are required")
	}
	return authRequest{scope: scope, campaign: s.CampaignID, device: dev, username: username, password: password}, nil
}

// do sends one API call with a token of a: in (if not nil) is sent as
// JSON, a successful reply is decoded into out (if not nil). An answer
// AnswerCode 998, or a 401 without AnswerCode, renews the token and retries
// once.
func (c *Client) do(ctx context.Context, op string, a authRequest, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return invalidArgument(op, "encoding the request failed")
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.tokens.get(ctx, a)
		if err != nil {
			return err
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(vendors.WithOp(ctx, op), method, u, rd)
		if err != nil {
			return invalidArgument(op, "building the request failed")
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		err = c.send(ctx, op, req, out)
		if attempt == 1 && (HasCode(err, CodeSessionExpired) || HasCode(err, CodeUnauthorized)) {
			c.tokens.invalidate(a, tok)
			continue
		}
		return err
	}
}

// send adds the common headers, sends req, classifies the reply and decodes
// a success into out. A transport failure is classified against ctx (the
// caller's own cancellation is returned as is).
func (c *Client) send(ctx context.Context, op string, req *http.Request, out any) error {
	req.Header.Set("x-api-key", c.cfg.APIKey.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return vendors.TransportError(ctx, Vendor, op, redactURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: resp.StatusCode,
			Code: CodeInvalidAnswer, Message: "reading the reply failed", Err: err}
	}
	if len(b) > maxReplyBody {
		return invalidAnswer(op, resp.StatusCode, "the reply is larger than "+strconv.Itoa(maxSuccessBodyReport)+" MiB", nil)
	}
	if err := checkReply(resp.StatusCode, resp.Header, b, c.now()); err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) {
			ve.Op = op
		}
		return err
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 && resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return invalidAnswer(op, resp.StatusCode, "the reply is not the expected JSON", nil)
	}
	return nil
}

// authReply is the answer of /auth and /auth/refreshToken. Several
// spellings are accepted: the reply's shape is not published.
type authReply struct {
	Token           string  `json:"token"`
	JWT             string  `json:"jwt"`
	AccessToken     string  `json:"access_token"`
	RefreshToken    string  `json:"refreshToken"`
	RefreshTokenAlt string  `json:"refresh_token"`
	ExpiresIn       float64 `json:"expiresIn"`
	RefreshExpires  float64 `json:"refreshTokenExpiresIn"`
}

func (r authReply) jwt() string { return firstNonEmpty(r.Token, r.JWT, r.AccessToken) }

// authBody is the body of POST /auth.
type authBody struct {
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	CampaignID string `json:"campaignid"`
	DeviceType string `json:"devicetype"`
	Scope      string `json:"scope"`
}

// auth implements authenticator: POST /auth. It runs detached from the
// callers (see tokenCache.get): any transport failure is the vendor's or
// the network's.
func (c *Client) auth(ctx context.Context, a authRequest) (session, error) {
	in := authBody{CampaignID: a.campaign, DeviceType: a.device, Scope: a.scope}
	if a.scope == ScopeCustomer {
		in.Username, in.Password = a.username, a.password.Reveal()
	}
	return c.tokenCall(ctx, OpAuth, "/auth", in, secret.String{})
}

// refresh implements authenticator: POST /auth/refreshToken.
func (c *Client) refresh(ctx context.Context, _ authRequest, s session) (session, error) {
	in := struct {
		RefreshToken string `json:"refreshToken"`
	}{s.refresh.Reveal()}
	ns, err := c.tokenCall(ctx, OpRefreshToken, "/auth/refreshToken", in, s.refresh)
	if err != nil {
		return session{}, err
	}
	if ns.refresh.IsZero() { // the same refresh token, its deadline unchanged
		ns.refresh, ns.refreshUntil = s.refresh, s.refreshUntil
	}
	return ns, nil
}

// tokenCall posts in to path and reads a session. When the reply names no
// refresh token, prevRefresh (if any) is left to the caller.
func (c *Client) tokenCall(ctx context.Context, op, path string, in any, prevRefresh secret.String) (session, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return session{}, invalidArgument(op, "encoding the request failed")
	}
	req, err := http.NewRequestWithContext(vendors.WithOp(ctx, op), http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return session{}, invalidArgument(op, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	obtained := c.now()
	var r authReply
	if err := c.send(context.Background(), op, req, &r); err != nil {
		return session{}, err
	}
	tok := r.jwt()
	if tok == "" {
		return session{}, invalidAnswer(op, http.StatusOK, "the reply has no token", nil)
	}
	ttl := time.Duration(r.ExpiresIn * float64(time.Second))
	if ttl <= 0 {
		if exp, ok := jwtExpiry(tok); ok {
			ttl = exp.Sub(obtained)
		}
	}
	if ttl <= 0 {
		ttl = defaultJWTTTL
	}
	s := session{jwt: secret.New(tok), renewAt: obtained.Add(ttl - renewMargin(ttl))}
	if rt := firstNonEmpty(r.RefreshToken, r.RefreshTokenAlt); rt != "" && rt != prevRefresh.Reveal() {
		rttl := time.Duration(r.RefreshExpires * float64(time.Second))
		if rttl <= 0 {
			rttl = defaultRefreshTTL
		}
		s.refresh, s.refreshUntil = secret.New(rt), obtained.Add(rttl-renewMargin(rttl))
	}
	return s, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(claims.Exp), 0), true
}

// invalidAnswer is a successful reply the client cannot use: Transient (a
// proxy page may be in the way).
func invalidAnswer(op string, status int, msg string, err error) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: status,
		Code: CodeInvalidAnswer, Message: msg, Err: err}
}

// invalidArgument is a call the client refuses to send.
func invalidArgument(op, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Permanent, Code: CodeInvalidArgument, Message: msg}
}

// redactURL removes the query (e-mails, card numbers) from the URL a
// *url.Error names.
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

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
