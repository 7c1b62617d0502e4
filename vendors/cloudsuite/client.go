// Package cloudsuite is the client of CloudSuite's REST API (B2B
// e-commerce: poll the new inactive users of an origin, read their
// profiles, link them to a customer and trigger their activation e-mail)
// and a simulator of that API for tests, the demo and standalone use.
//
// CloudSuite pushes nothing: integrations poll GET
// /api/origin/{origin}/user/?registration=new&inactive=true (NewUsers),
// read GET /api/userprofile/{id} (Profile), create or replace the customer
// with PUT /api/origin/{origin}/customer/{key}/ (PutCustomer), and link and
// activate the user with one PATCH /api/origin/{origin}/user/{key}
// ({"authorised_customers":[…],"registration":"new","active":false}:
// UpdateUser).
//
// The client authenticates with OAuth2 client credentials at a Keycloak
// token endpoint (Config.TokenURL) and sends the token as a Bearer. The
// token is cached and shared by concurrent callers, refreshed shortly
// before it expires, and replaced once when the API answers 401.
//
// Every reply is classified once, by CheckResponse, into a *vendors.Error
// whose Code is derived from the status the way Django REST Framework
// names its errors ("not_found", "invalid"…) or, for the token endpoint,
// is the OAuth2 "error" ("invalid_client"). Profile of a missing profile
// returns vendors.ErrNotFound. The client secret is a secret.String and,
// like the tokens, never appears in an error.
package cloudsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	OpToken       = "token"
	OpListUsers   = "user.list"
	OpGetProfile  = "userprofile.get"
	OpUpdateUser  = "user.update"
	OpPutCustomer = "customer.put"
)

// DefaultTimeout is the timeout of the HTTP client NewClient makes when
// WithHTTPClient is not given.
const DefaultTimeout = 30 * time.Second

// MaxPages bounds the pages NewUsers follows.
const MaxPages = 10_000

const defaultUserAgent = "registrar-cloudsuite/1"

// Config is one CloudSuite API client of one origin.
type Config struct {
	// BaseURL is the API host, e.g. "https://test-api.cloudsuite.io"; the
	// API paths /api/… are appended (a trailing "/" or "/api" is
	// tolerated).
	BaseURL string `json:"baseURL" yaml:"baseURL"`
	// TokenURL is the OpenID Connect token endpoint, e.g.
	// "https://id.cloudsuite.io/realms/CloudSuite/protocol/openid-connect/token".
	TokenURL     string        `json:"tokenURL" yaml:"tokenURL"`
	ClientID     string        `json:"clientId" yaml:"clientId"`
	ClientSecret secret.String `json:"clientSecret" yaml:"clientSecret"`
	// Origin is the origin code in /api/origin/{origin}/….
	Origin string `json:"origin" yaml:"origin"`
}

// Validate reports the first missing or malformed field, by its
// configuration key.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errors.New("cloudsuite: baseURL is required")
	}
	if !httpURL(c.BaseURL) {
		return errors.New("cloudsuite: baseURL is not an http(s) URL without query or user info")
	}
	if c.TokenURL == "" {
		return errors.New("cloudsuite: tokenURL is required")
	}
	if !httpURL(c.TokenURL) {
		return errors.New("cloudsuite: tokenURL is not an http(s) URL without query or user info")
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return errors.New("cloudsuite: clientId is required")
	}
	if c.ClientSecret.IsZero() {
		return errors.New("cloudsuite: clientSecret is required")
	}
	if strings.TrimSpace(c.Origin) == "" {
		return errors.New("cloudsuite: origin is required")
	}
	if strings.ContainsAny(c.Origin, "/?#% \t\r\n") {
		return errors.New("cloudsuite: origin must not contain '/', '?', '#', '%' or white space")
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// Option configures a Client.
type Option func(*options)

type options struct {
	hc  *http.Client
	now func() time.Time
}

// WithHTTPClient sets the HTTP client; its Timeout bounds each request
// (the token request included). The default has DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc != nil {
			o.hc = hc
		}
	}
}

// WithClock sets the clock of token expiry and of an HTTP-date
// Retry-After.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// User is one user as listed. Raw is the user object exactly as CloudSuite
// sent it.
type User struct {
	Key        string  // "key" (UUID); "" if CloudSuite sent none
	Email      string  // "email"
	CreateDate string  // "create_date" as sent (naive ISO time like "2023-01-18T09:23:02.507764"), "" if absent
	Profiles   []int64 // "user_profiles"
	Raw        json.RawMessage
}

// Client calls CloudSuite for one origin. It is safe for concurrent use.
// It prints and logs (String, LogValue) as its base URL, origin and client
// id; the client secret and the tokens are held where fmt does not look.
type Client struct {
	baseURL  string
	tokenURL string
	clientID string
	secret   func() string // the client secret, behind a closure so that printing a Client never shows it
	originID string
	base     *url.URL // scheme and host (and any path prefix) of the API, no trailing slash, no /api
	api      string   // base + "/api"
	orgURL   string   // base + "/api/origin/{origin}", escaped
	hc       *http.Client
	now      func() time.Time
	tokens   *tokenSource
}

// Origin returns the origin code the client works on (Config.Origin).
func (c *Client) Origin() string { return c.originID }

// String describes the client without its secret.
func (c *Client) String() string {
	return "cloudsuite.Client{baseURL: " + c.baseURL + ", origin: " + c.originID + ", clientId: " + c.clientID + "}"
}

// GoString describes the client without its secret.
func (c *Client) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secret.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("vendor", Vendor), slog.String("baseURL", c.baseURL),
		slog.String("origin", c.originID), slog.String("clientId", c.clientID))
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
	root := strings.TrimRight(cfg.BaseURL, "/")
	if len(root) >= 4 && strings.EqualFold(root[len(root)-4:], "/api") {
		root = strings.TrimRight(root[:len(root)-4], "/")
	}
	base, err := url.Parse(root)
	if err != nil {
		return nil, errors.New("cloudsuite: baseURL is not an http(s) URL without query or user info")
	}
	sec := cfg.ClientSecret
	c := &Client{
		baseURL: cfg.BaseURL, tokenURL: cfg.TokenURL, clientID: cfg.ClientID, originID: cfg.Origin,
		secret: sec.Reveal, base: base, api: root + "/api", hc: o.hc, now: o.now,
	}
	c.orgURL = c.api + "/origin/" + url.PathEscape(cfg.Origin)
	c.tokens = newTokenSource(o.now, c.fetchToken)
	return c, nil
}

// NewUsers lists the new inactive users of the origin: GET
// /api/origin/{origin}/user/?registration=new&inactive=true, with
// &create_date__gte=since when since is not "" (a naive ISO time or a
// date, as CloudSuite reads it). It follows "next" until it is null and
// returns the users of every page, each key once, in the order listed.
//
// The bearer token goes nowhere but BaseURL's host: a "next" URL on
// another scheme or host is refused (Permanent, CodeForeignNext), and so
// are pages that loop (a "next" seen twice, or more than MaxPages pages:
// CodePagingLoop).
func (c *Client) NewUsers(ctx context.Context, since string) ([]User, error) {
	q := "registration=new&inactive=true"
	if since != "" {
		q += "&create_date__gte=" + url.QueryEscape(since)
	}
	next := c.orgURL + "/user/?" + q
	seen := map[string]bool{}
	keys := map[string]bool{}
	var users []User
	for pages := 0; next != ""; pages++ {
		if pages >= MaxPages {
			return nil, permanent(OpListUsers, CodePagingLoop, fmt.Sprintf("more than %d pages of users", MaxPages))
		}
		current := next
		seen[current] = true
		body, err := c.do(ctx, OpListUsers, http.MethodGet, current, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Next    *string           `json:"next"`
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(body, &page); err != nil || page.Results == nil {
			return nil, invalidAnswer(OpListUsers, http.StatusOK, "the reply is not a page of users")
		}
		for _, raw := range page.Results {
			u, ok := parseUser(raw)
			if !ok {
				return nil, invalidAnswer(OpListUsers, http.StatusOK, "a listed user is not a JSON object")
			}
			if u.Key != "" {
				if keys[u.Key] {
					continue // listed again: the pages shifted under us
				}
				keys[u.Key] = true
			}
			users = append(users, u)
		}
		next = ""
		if page.Next != nil && *page.Next != "" {
			if next, err = c.nextPage(current, *page.Next); err != nil {
				return nil, err
			}
			if seen[next] {
				return nil, permanent(OpListUsers, CodePagingLoop, "the pages of users loop")
			}
		}
	}
	return users, nil
}

// nextPage resolves a "next" URL against the current page and refuses one
// on another scheme or host than BaseURL's.
func (c *Client) nextPage(current, next string) (string, error) {
	cur, err := url.Parse(current)
	if err != nil {
		return "", invalidAnswer(OpListUsers, http.StatusOK, "the page URL is not readable")
	}
	u, err := cur.Parse(next)
	if err != nil {
		return "", invalidAnswer(OpListUsers, http.StatusOK, "the next page URL is not readable")
	}
	if strings.EqualFold(c.base.Scheme, "https") && strings.EqualFold(u.Scheme, "http") &&
		strings.EqualFold(u.Hostname(), c.base.Hostname()) && (u.Port() == "" || u.Port() == "80") {
		// Behind a TLS-terminating proxy, Django writes its own links as
		// http: on the same host, follow them over https, never downgrade.
		u.Scheme, u.Host = c.base.Scheme, c.base.Host
	}
	if !sameOrigin(c.base, u) || u.User != nil {
		return "", permanent(OpListUsers, CodeForeignNext,
			"the next page is on another scheme or host than baseURL: not followed, so that the token stays with CloudSuite")
	}
	u.Fragment = ""
	return u.String(), nil
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (the scheme's default port when none is given).
func sameOrigin(a, b *url.URL) bool {
	if !strings.EqualFold(a.Scheme, b.Scheme) || !strings.EqualFold(a.Hostname(), b.Hostname()) {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return port(a) == port(b)
}

// parseUser reads one listed user; ok is false when raw is not an object.
// Fields of an unexpected type are left empty.
func parseUser(raw json.RawMessage) (User, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return User{}, false
	}
	u := User{Raw: append(json.RawMessage(nil), bytes.TrimSpace(raw)...)}
	str := func(k string) string {
		var s string
		if v, ok := obj[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	}
	u.Key, u.Email, u.CreateDate = str("key"), str("email"), str("create_date")
	var ids []json.RawMessage
	if v, ok := obj["user_profiles"]; ok && json.Unmarshal(v, &ids) == nil {
		for _, id := range ids {
			if n := idOf(id); n > 0 {
				u.Profiles = append(u.Profiles, n)
			}
		}
	}
	return u, true
}

// idOf reads an int64 sent as a number or a string; 0 otherwise.
func idOf(v json.RawMessage) int64 {
	var n json.Number
	if json.Unmarshal(v, &n) != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0
		}
		n = json.Number(strings.TrimSpace(s))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0
	}
	return i
}

// Profile returns the user profile id (GET /api/userprofile/{id}) as
// CloudSuite sent it: a JSON object with the company and address entered at
// registration (name, street1, house_number, zip, city, country,
// delivery_*, vat, coc…). A missing profile (404) is vendors.ErrNotFound,
// not a *vendors.Error.
func (c *Client) Profile(ctx context.Context, id int64) (json.RawMessage, error) {
	if id <= 0 {
		return nil, invalidArgument(OpGetProfile, "the profile id must be positive")
	}
	body, err := c.do(ctx, OpGetProfile, http.MethodGet, c.api+"/userprofile/"+strconv.FormatInt(id, 10), nil)
	if HasCode(err, CodeNotFound) {
		return nil, vendors.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return nil, invalidAnswer(OpGetProfile, http.StatusOK, "the reply is not a JSON object")
	}
	return json.RawMessage(body), nil
}

// UpdateUser changes the fields of user key (PATCH
// /api/origin/{origin}/user/{key}); fields not named are left as they are.
// {"authorised_customers":["C1"]} links the user to customer C1;
// {"registration":"new","active":false} triggers the activation e-mail;
// both fit in one call. An unknown user is a Permanent *vendors.Error with
// Status 404 (CodeNotFound), not vendors.ErrNotFound; a customer that does
// not exist is a 400 (CodeInvalid) naming the field.
func (c *Client) UpdateUser(ctx context.Context, key string, fields map[string]any) error {
	if strings.TrimSpace(key) == "" {
		return invalidArgument(OpUpdateUser, "the user key is required")
	}
	if len(fields) == 0 {
		return invalidArgument(OpUpdateUser, "no fields to update")
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return invalidArgument(OpUpdateUser, "the fields cannot be encoded as JSON")
	}
	_, err = c.do(ctx, OpUpdateUser, http.MethodPatch, c.orgURL+"/user/"+url.PathEscape(key), body)
	return err
}

// PutCustomer creates customer key, or replaces it if it exists (PUT
// /api/origin/{origin}/customer/{key}/); body is the customer, a JSON
// object, sent as is.
func (c *Client) PutCustomer(ctx context.Context, key string, body json.RawMessage) error {
	if strings.TrimSpace(key) == "" {
		return invalidArgument(OpPutCustomer, "the customer key is required")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return invalidArgument(OpPutCustomer, "the customer must be a JSON object")
	}
	_, err := c.do(ctx, OpPutCustomer, http.MethodPut, c.orgURL+"/customer/"+url.PathEscape(key)+"/", body)
	return err
}

// do sends an API request with the bearer token and returns the body of a
// successful reply. A 401 drops the token and the request is sent once
// more with a fresh one; a second 401 is returned (Permanent).
func (c *Client) do(ctx context.Context, op, method, u string, body []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return nil, err
		}
		b, status, err := c.send(ctx, op, method, u, body, tok)
		if status == http.StatusUnauthorized && attempt == 0 {
			c.tokens.invalidate(tok)
			continue
		}
		return b, err
	}
}

// send performs one API request and classifies its reply. status is the
// reply's HTTP status, 0 when there was none.
func (c *Client) send(ctx context.Context, op, method, u string, body []byte, tok secret.String) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(vendors.WithOp(ctx, op), method, u, rd)
	if err != nil {
		return nil, 0, invalidArgument(op, "building the request failed")
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b, status, err := c.roundTrip(ctx, op, req)
	return b, status, c.scrub(err, tok)
}

// roundTrip sends req, reads the reply (an error body up to 64 KiB, a
// success up to 8 MiB) and classifies it.
func (c *Client) roundTrip(ctx context.Context, op string, req *http.Request) ([]byte, int, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, vendors.TransportError(ctx, Vendor, op, redactURL(err))
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	limit := int64(maxErrorBody)
	if ok {
		limit = maxReplyBody + 1
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil && ok {
		if ctx.Err() != nil {
			return nil, resp.StatusCode, ctx.Err()
		}
		return nil, resp.StatusCode, &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: resp.StatusCode,
			Code: CodeInvalidAnswer, Message: "reading the reply failed", Err: redactURL(err)}
	}
	if err := checkReply(resp.StatusCode, resp.Header, b, c.now()); err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) {
			ve.Op = op
		}
		return nil, resp.StatusCode, err
	}
	if len(b) > maxReplyBody {
		return nil, resp.StatusCode, invalidAnswer(op, resp.StatusCode, fmt.Sprintf("the reply is larger than %d MiB", maxReplyBody>>20))
	}
	return b, resp.StatusCode, nil
}

// fetchToken asks the token endpoint for a token (client credentials).
func (c *Client) fetchToken(ctx context.Context) (secret.String, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.secret()},
		"scope":         {"openid"},
	}
	req, err := http.NewRequestWithContext(vendors.WithOp(ctx, OpToken), http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return secret.String{}, 0, invalidArgument(OpToken, "building the token request failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	b, status, err := c.roundTrip(ctx, OpToken, req)
	if err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) && ve.Kind == vendors.Permanent && (status == http.StatusUnauthorized || status == http.StatusBadRequest) &&
			(ve.Code == CodeNotAuthenticated || ve.Code == CodeInvalid) {
			ve.Message = credentialsMessage // a refusal without an OAuth2 body
		}
		return secret.String{}, 0, c.scrub(err)
	}
	var reply struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		TokenType   string          `json:"token_type"`
	}
	if json.Unmarshal(b, &reply) != nil {
		return secret.String{}, 0, invalidAnswer(OpToken, status, "the token reply is not the expected JSON")
	}
	if reply.AccessToken == "" || !headerSafe(reply.AccessToken) {
		return secret.String{}, 0, invalidAnswer(OpToken, status, "the token reply has no usable access_token")
	}
	if reply.TokenType != "" && !strings.EqualFold(reply.TokenType, "bearer") {
		return secret.String{}, 0, invalidAnswer(OpToken, status, "the token reply is not a bearer token")
	}
	ttl := DefaultTokenTTL
	if n := idOf(reply.ExpiresIn); n > 0 {
		ttl = time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	return secret.New(reply.AccessToken), ttl, nil
}

// headerSafe reports whether a token can be sent in a header as is.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// scrub replaces the client secret and the given tokens wherever they
// appear in a *vendors.Error's Message and Fields: the vendor should never
// echo them, but if it does they must not reach a log.
func (c *Client) scrub(err error, toks ...secret.String) error {
	var ve *vendors.Error
	if err == nil || !errors.As(err, &ve) {
		return err
	}
	secrets := []string{c.secret()}
	for _, t := range toks {
		secrets = append(secrets, t.Reveal())
	}
	clean := func(s string) string {
		for _, v := range secrets {
			if v != "" {
				s = strings.ReplaceAll(s, v, secret.Marker)
			}
		}
		return s
	}
	ve.Code, ve.Message = clean(ve.Code), clean(ve.Message)
	for i := range ve.Fields {
		ve.Fields[i].Field, ve.Fields[i].Message = clean(ve.Fields[i].Field), clean(ve.Fields[i].Message)
	}
	return err
}

// permanent is a Permanent error of the client's own making.
func permanent(op, code, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Permanent, Code: code, Message: msg}
}

// invalidAnswer is a successful reply the client cannot use: Transient (a
// proxy page may be in the way).
func invalidAnswer(op string, status int, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: status, Code: CodeInvalidAnswer, Message: msg}
}

// invalidArgument is a call the client refuses to send.
func invalidArgument(op, msg string) error {
	return permanent(op, CodeInvalidArgument, msg)
}

// redactURL removes the query (filters) and any user info from the URL a
// *url.Error names, and keeps the error chain (timeouts stay
// recognisable).
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i] + "?…"
	}
	if p, perr := url.Parse(u); perr == nil && p.User != nil {
		p.User = nil
		u = p.String()
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}
