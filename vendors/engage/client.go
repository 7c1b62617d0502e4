// Package engage is the client of Mapp Engage's REST API (contacts: get,
// create, update by identifier) and a simulator of that API for tests, the
// demo and standalone use.
//
// The client authenticates with HTTP Basic (an API system user) and sends
// JSON to {baseURL}/v19/contact/{get,create,update}; a BaseURL already
// ending in "/v<n>" is used as is. Engage answers bad credentials 403 (not
// 401) and a missing contact 400 NO_SUCH_OBJECT (not 404).
//
// Every reply is classified once, by CheckResponse, into a *vendors.Error
// whose Code is Engage's errorCode ("OBJECT_ALREADY_EXISTS"); its Message is
// a generic description of the code, never the vendor's message (which
// echoes identifiers). GetContact of a missing contact returns
// vendors.ErrNotFound. The password is a secret.String and never appears in
// an error.
package engage

import (
	"bytes"
	"context"
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

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// Operation names, the Op of the errors the client returns.
const (
	OpGetContact    = "contact.get"
	OpCreateContact = "contact.create"
	OpUpdateContact = "contact.update"
)

// APIVersion is the REST API version the client appends to a BaseURL that
// names none.
const APIVersion = "v19"

// DefaultTimeout is the timeout of the HTTP client NewClient makes when
// WithHTTPClient is not given.
const DefaultTimeout = 30 * time.Second

const defaultUserAgent = "registrar-engage/1"

// Identifier types (case-sensitive: Engage refuses "email").
const (
	TypeEmail    = "EMAIL"
	TypeMobile   = "MOBILE"
	TypeAppAlias = "APP_ALIAS"
	TypeExternal = "EXTERNAL"
	TypeID       = "ID"
)

// ValidIdentifierType reports whether t is one of the five identifier
// types, in upper case.
func ValidIdentifierType(t string) bool {
	switch t {
	case TypeEmail, TypeMobile, TypeAppAlias, TypeExternal, TypeID:
		return true
	}
	return false
}

// Config is one Engage API system user.
type Config struct {
	// BaseURL is the API root, with or without the version:
	// "https://x.example.com/api/rest" or ".../api/rest/v19".
	BaseURL  string        `json:"baseURL" yaml:"baseURL"`
	Username string        `json:"username" yaml:"username"`
	Password secret.String `json:"password" yaml:"password"`
}

// Validate reports the first missing or malformed field, by its
// configuration key.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errors.New("engage: baseURL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("engage: baseURL is not an http(s) URL without query or user info")
	}
	if strings.TrimSpace(c.Username) == "" {
		return errors.New("engage: username is required")
	}
	if c.Password.IsZero() {
		return errors.New("engage: password is required")
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

// WithClock sets the clock used to read an HTTP-date Retry-After.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Identifier names a contact: Type is one of TypeEmail, TypeMobile,
// TypeAppAlias, TypeExternal, TypeID (case-sensitive).
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Attribute is one contact attribute ("FirstName", "user.ISOCountryCode").
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Contact is an Engage contact.
type Contact struct {
	ID               int64       `json:"contactId"`
	EmailAddress     string      `json:"emailAddress,omitempty"`
	MobileNumber     string      `json:"mobileNumber,omitempty"`
	ApplicationAlias string      `json:"applicationAlias,omitempty"`
	Identifier       string      `json:"identifier,omitempty"`
	Attributes       []Attribute `json:"attributes,omitempty"`
}

// Attribute returns the value of the attribute name, if the contact has it.
func (c Contact) Attribute(name string) (string, bool) {
	for _, a := range c.Attributes {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Client calls one Engage account. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // ends in /v<n>, no trailing slash
	hc   *http.Client
	now  func() time.Time
}

var versionSuffix = regexp.MustCompile(`/v[0-9]+$`)

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
	base := strings.TrimRight(cfg.BaseURL, "/")
	if !versionSuffix.MatchString(base) {
		base += "/" + APIVersion
	}
	return &Client{cfg: cfg, base: base, hc: o.hc, now: o.now}, nil
}

// GetContact returns the contact id names (POST contact/get). A missing
// contact (400 NO_SUCH_OBJECT) is vendors.ErrNotFound, not a
// *vendors.Error.
func (c *Client) GetContact(ctx context.Context, id Identifier) (Contact, error) {
	if err := checkIdentifier(OpGetContact, id); err != nil {
		return Contact{}, err
	}
	var out wireContact
	err := c.do(ctx, OpGetContact, "/contact/get", nil, id, &out)
	if IsNoSuchObject(err) {
		return Contact{}, vendors.ErrNotFound
	}
	if err != nil {
		return Contact{}, err
	}
	return out.contact(), nil
}

// CreateContact creates a contact (POST contact/create); in needs at least
// one of EmailAddress, MobileNumber and ApplicationAlias, and its ID is
// ignored. A contact whose identifier is already used is refused with Code
// CodeObjectAlreadyExists (see IsAlreadyExists).
func (c *Client) CreateContact(ctx context.Context, in Contact) (Contact, error) {
	if in.EmailAddress == "" && in.MobileNumber == "" && in.ApplicationAlias == "" {
		return Contact{}, invalidArgument(OpCreateContact, "one of emailAddress, mobileNumber and applicationAlias is required")
	}
	in.ID = 0
	body := struct {
		EmailAddress     string      `json:"emailAddress,omitempty"`
		MobileNumber     string      `json:"mobileNumber,omitempty"`
		ApplicationAlias string      `json:"applicationAlias,omitempty"`
		Identifier       string      `json:"identifier,omitempty"`
		Attributes       []Attribute `json:"attributes"`
	}{in.EmailAddress, in.MobileNumber, in.ApplicationAlias, in.Identifier, nonNil(in.Attributes)}
	var out wireContact
	if err := c.do(ctx, OpCreateContact, "/contact/create", nil, body, &out); err != nil {
		return Contact{}, err
	}
	return out.contact(), nil
}

// UpdateContact updates the contact id names (POST
// contact/update?identifierType=&unifiedIdentifierName=): in's
// EmailAddress and MobileNumber when not empty, and its Attributes, which
// Engage merges by name into the contact's. An unknown contact is refused
// with Code CodeNoSuchObject (see IsNoSuchObject). It returns the contact as
// the reply gives it (the zero Contact if the reply has no body).
func (c *Client) UpdateContact(ctx context.Context, id Identifier, in Contact) (Contact, error) {
	if err := checkIdentifier(OpUpdateContact, id); err != nil {
		return Contact{}, err
	}
	q := url.Values{"identifierType": {id.Type}, "unifiedIdentifierName": {id.Value}}
	body := struct {
		EmailAddress string      `json:"emailAddress,omitempty"`
		MobileNumber string      `json:"mobileNumber,omitempty"`
		Attributes   []Attribute `json:"attributes"`
	}{in.EmailAddress, in.MobileNumber, nonNil(in.Attributes)}
	var out wireContact
	if err := c.do(ctx, OpUpdateContact, "/contact/update", q, body, &out); err != nil {
		return Contact{}, err
	}
	return out.contact(), nil
}

func checkIdentifier(op string, id Identifier) error {
	if !ValidIdentifierType(id.Type) {
		return invalidArgument(op, "identifier type must be EMAIL, MOBILE, APP_ALIAS, EXTERNAL or ID")
	}
	if strings.TrimSpace(id.Value) == "" {
		return invalidArgument(op, "identifier value is required")
	}
	return nil
}

func nonNil(a []Attribute) []Attribute {
	if a == nil {
		return []Attribute{}
	}
	return a
}

// wireContact reads a contact reply. Besides the documented fields it
// accepts the spellings of the vendor's example ("id", "email") and an id
// sent as a string.
type wireContact struct {
	ContactID        json.RawMessage `json:"contactId"`
	ID               json.RawMessage `json:"id"`
	EmailAddress     string          `json:"emailAddress"`
	Email            string          `json:"email"`
	MobileNumber     string          `json:"mobileNumber"`
	ApplicationAlias string          `json:"applicationAlias"`
	Identifier       string          `json:"identifier"`
	Attributes       []Attribute     `json:"attributes"`
}

func (w wireContact) contact() Contact {
	c := Contact{
		ID:               idOf(w.ContactID),
		EmailAddress:     firstNonEmpty(w.EmailAddress, w.Email),
		MobileNumber:     w.MobileNumber,
		ApplicationAlias: w.ApplicationAlias,
		Identifier:       w.Identifier,
		Attributes:       w.Attributes,
	}
	if c.ID == 0 {
		c.ID = idOf(w.ID)
	}
	return c
}

// idOf reads an int64 sent as a number or a string; 0 otherwise.
func idOf(v json.RawMessage) int64 {
	if len(v) == 0 {
		return 0
	}
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

// do posts in as JSON to path (with query), classifies the reply and decodes
// a success into out.
func (c *Client) do(ctx context.Context, op, path string, query url.Values, in any, out *wireContact) error {
	body, err := json.Marshal(in)
	if err != nil {
		return invalidArgument(op, "encoding the request failed")
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(vendors.WithOp(ctx, op), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return invalidArgument(op, "building the request failed")
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
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
		return invalidAnswer(op, resp.StatusCode, fmt.Sprintf("the reply is larger than %d MiB", maxReplyBody>>20))
	}
	if err := checkReply(resp.StatusCode, resp.Header, b, c.now()); err != nil {
		var ve *vendors.Error
		if errors.As(err, &ve) {
			ve.Op = op
		}
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return invalidAnswer(op, resp.StatusCode, "the reply is not the expected JSON")
	}
	return nil
}

// invalidAnswer is a successful reply the client cannot use: Transient (a
// proxy page may be in the way).
func invalidAnswer(op string, status int, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Transient, Status: status, Code: CodeInvalidAnswer, Message: msg}
}

// invalidArgument is a call the client refuses to send.
func invalidArgument(op, msg string) error {
	return &vendors.Error{Vendor: Vendor, Op: op, Kind: vendors.Permanent, Code: CodeInvalidArgument, Message: msg}
}

// redactURL removes the query (identifier values) and any user info from
// the URL a *url.Error names.
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

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
