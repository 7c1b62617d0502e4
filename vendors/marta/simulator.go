package marta

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/simlog"
)

// Simulator defaults.
const (
	DefaultSimJWTTTL     = 15 * time.Minute  // lifetime of issued JWTs
	DefaultSimRefreshTTL = 60 * time.Minute  // lifetime of issued refresh tokens
	DefaultMaxRequestLog = simlog.DefaultMax // requests kept in the log
	DefaultMaxCodes      = 1000              // sent codes kept in the outbox
)

// The demo account of DefaultSimConfig.
const (
	DemoAPIKey             = "demo-marta-key"
	DemoCampaignID         = "1001"
	DemoCardHolderEmail    = "card.holder@example.com" // a card, no account: BranchHasCard
	DemoCardHolderCard     = "4000000001"
	DemoCardHolderID       = "100001"
	DemoRegisteredEmail    = "registered@example.com" // registered, username = e-mail: BranchRegistered
	DemoRegisteredID       = "100002"
	DemoRegisteredPassword = "demo-password-1"
)

// Purposes of a SentCode.
const (
	PurposeRegistration = "registration" // POST /customer/verifyemail
	PurposeCredentials  = "credentials"  // POST /customer/generateverificationcode
)

const (
	maxSimBody   = 64 << 10
	simAdmin     = "/_sim/"
	tokenSweepAt = 4096
	minPassword  = 6
	firstCustID  = 100001
	firstCardNum = 4000000001
)

// staticFields are the customer's own fields: a missing mandatory one is
// refused with 240; any other field of a campaign (custom data, consents)
// with 132.
var staticFields = map[string]bool{
	"name": true, "surname": true, "gender": true, "birthdate": true,
	"mailcontactdata": true, "mobilecontactdata": true,
}

// SimConfig configures a Simulator.
type SimConfig struct {
	// APIKey is the x-api-key /auth and /auth/refreshToken require.
	APIKey string `json:"apiKey" yaml:"apiKey"`
	// Campaigns are the brands' campaigns and their data forms.
	Campaigns []SimCampaign `json:"campaigns" yaml:"campaigns"`
	// Customers are seeded at start, as by Simulator.AddCustomer.
	Customers []SimCustomer `json:"customers,omitempty" yaml:"customers,omitempty"`
	// JWTTTL is the lifetime of issued JWTs; default 15 minutes.
	JWTTTL time.Duration `json:"jwtTTL" yaml:"jwtTTL"`
	// RefreshTTL is the lifetime of issued refresh tokens; default 60
	// minutes. Refreshing does not extend it.
	RefreshTTL time.Duration `json:"refreshTTL" yaml:"refreshTTL"`
	// Faults are injected in front of the API (not /_sim/). Change them at
	// run time with Simulator.Faults or /_sim/faults.
	Faults fault.Config `json:"faults" yaml:"faults"`
	// MaxRequestLog bounds the request log (oldest dropped first); default
	// 100000, negative keeps no log. CountRequests counts past it.
	MaxRequestLog int `json:"maxRequestLog" yaml:"maxRequestLog"`
	// Clock is the simulator's time (token expiry); default time.Now.
	Clock func() time.Time `json:"-" yaml:"-"`
}

// SimCampaign is a campaign and its customer data form (the answer of
// customerdatafields; Privacy fields are the consents).
type SimCampaign struct {
	ID     string      `json:"id" yaml:"id"`
	Fields []DataField `json:"fields" yaml:"fields"`
}

// SimCustomer is a customer of the simulator. A customer with a Password is
// registered (it can log in with Username and Password); one without has a
// card but no account.
type SimCustomer struct {
	CustomerID string `json:"customerid,omitempty" yaml:"customerid,omitempty"` // default: the next free id
	CampaignID string `json:"campaignid,omitempty" yaml:"campaignid,omitempty"` // default: the first campaign
	Card       string `json:"card,omitempty" yaml:"card,omitempty"`             // default: a new card number
	FidelyCode string `json:"fidelyCode,omitempty" yaml:"fidelyCode,omitempty"` // default: a new 14-digit code
	Email      string `json:"email,omitempty" yaml:"email,omitempty"`
	Mobile     string `json:"mobile,omitempty" yaml:"mobile,omitempty"`
	Username   string `json:"username,omitempty" yaml:"username,omitempty"`
	// Password is only read (seeding): Customers and /_sim/customers never
	// show it.
	Password   string          `json:"password,omitempty" yaml:"password,omitempty"`
	Registered bool            `json:"registered" yaml:"-"` // shown only: a Password makes a customer registered
	Name       string          `json:"name,omitempty" yaml:"name,omitempty"`
	Surname    string          `json:"surname,omitempty" yaml:"surname,omitempty"`
	Gender     string          `json:"gender,omitempty" yaml:"gender,omitempty"`
	Birthdate  string          `json:"birthdate,omitempty" yaml:"birthdate,omitempty"`
	Privacy    map[string]bool `json:"privacy,omitempty" yaml:"privacy,omitempty"`
	Fields     map[string]any  `json:"fields,omitempty" yaml:"fields,omitempty"`
}

// DefaultSimConfig is the demo account: API key DemoAPIKey, campaign
// DemoCampaignID whose form has name, surname, gender and birthdate
// (visible, mandatory), mailcontactdata and mobilecontactdata (visible), and
// the consents usedforpromotions (visible, mandatory: a true or false answer
// is required), usedforstatistics and usedbyothers (visible). Two customers:
// DemoCardHolderEmail with card DemoCardHolderCard and no account, and
// DemoRegisteredEmail, registered with that username and
// DemoRegisteredPassword.
func DefaultSimConfig() SimConfig {
	return SimConfig{
		APIKey: DemoAPIKey,
		Campaigns: []SimCampaign{{
			ID: DemoCampaignID,
			Fields: []DataField{
				{Name: "name", Visible: true, Mandatory: true},
				{Name: "surname", Visible: true, Mandatory: true},
				{Name: "gender", Visible: true, Mandatory: true},
				{Name: "birthdate", Visible: true, Mandatory: true},
				{Name: "mailcontactdata", Visible: true},
				{Name: "mobilecontactdata", Visible: true},
				{Name: "usedforpromotions", Visible: true, Mandatory: true, Privacy: true},
				{Name: "usedforstatistics", Visible: true, Privacy: true},
				{Name: "usedbyothers", Visible: true, Privacy: true},
			},
		}},
		Customers: []SimCustomer{
			{CustomerID: DemoCardHolderID, CampaignID: DemoCampaignID, Card: DemoCardHolderCard,
				Email: DemoCardHolderEmail, Mobile: "+393331234567", Name: "Carla", Surname: "Holder"},
			{CustomerID: DemoRegisteredID, CampaignID: DemoCampaignID, Card: "4000000002",
				Email: DemoRegisteredEmail, Mobile: "+393337654321", Username: DemoRegisteredEmail, Password: DemoRegisteredPassword,
				Name: "Rita", Surname: "Registered", Gender: "F", Birthdate: "1985-03-14",
				Privacy: map[string]bool{"usedforpromotions": true, "usedforstatistics": false, "usedbyothers": false}},
		},
	}
}

// Request is one request the simulator received outside /_sim/, faulted or
// not. It never holds a body, a query or a header value.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Scope  string    `json:"scope,omitempty"` // the scope of the bearer token, or the one /auth asked for
	Status int       `json:"status"`          // 0 when nothing was written (the client gave up)
}

// SentCode is a verification code the simulator "sent": the person's
// mailbox or phone.
type SentCode struct {
	Time    time.Time `json:"time"`
	To      string    `json:"to"` // the e-mail address (lower-cased) or mobile number
	Code    string    `json:"code"`
	Purpose string    `json:"purpose"` // PurposeRegistration or PurposeCredentials
}

// Simulator is an in-process MARTA Customer API: /auth with its scopes, JWT
// expiry and refresh tokens, the check-card branches, the verification
// codes (kept in an outbox: see Codes), registration, credentials change,
// the data form with its mandatory fields, and the faults of a
// fault.Injector. It is an http.Handler, safe for concurrent use. Its
// controls are under /_sim/ (see ServeHTTP).
type Simulator struct {
	apiKey     string
	jwtTTL     time.Duration
	refreshTTL time.Duration
	now        func() time.Time
	faults     *fault.Injector
	api        http.Handler
	admin      http.Handler
	jwtKey     []byte

	campaigns map[string]*SimCampaign // read-only after NewSimulator
	order     []string

	mu        sync.Mutex // guards everything below
	customers []*SimCustomer
	byID      map[string]*SimCustomer
	nextID    int
	nextCard  int
	tokens    map[string]*simToken // by JWT
	refreshes map[string]*simToken // by refresh token
	pending   map[string]string    // code key → code
	codes     []SentCode

	requests *simlog.Log[Request]
}

// simToken is an issued JWT or refresh token.
type simToken struct {
	scope, campaign, customerID string
	expires                     time.Time
}

// NewSimulator returns a simulator of cfg. Seeded customers lacking an id,
// card or FidelyCode get new ones; one repeating an id is skipped.
func NewSimulator(cfg SimConfig) *Simulator {
	s := &Simulator{
		apiKey: cfg.APIKey, jwtTTL: cfg.JWTTTL, refreshTTL: cfg.RefreshTTL, now: cfg.Clock,
		faults:    fault.New(cfg.Faults),
		campaigns: map[string]*SimCampaign{},
		byID:      map[string]*SimCustomer{},
		nextID:    firstCustID,
		nextCard:  firstCardNum,
		tokens:    map[string]*simToken{},
		refreshes: map[string]*simToken{},
		pending:   map[string]string{},
		requests:  simlog.New[Request](cfg.MaxRequestLog),
		jwtKey:    make([]byte, 32),
	}
	_, _ = rand.Read(s.jwtKey)
	if s.now == nil {
		s.now = time.Now
	}
	if s.jwtTTL <= 0 {
		s.jwtTTL = DefaultSimJWTTTL
	}
	if s.refreshTTL <= 0 {
		s.refreshTTL = DefaultSimRefreshTTL
	}
	for _, c := range cfg.Campaigns {
		if c.ID == "" || s.campaigns[c.ID] != nil {
			continue
		}
		c.Fields = append([]DataField(nil), c.Fields...)
		s.campaigns[c.ID] = &c
		s.order = append(s.order, c.ID)
	}
	for _, c := range cfg.Customers {
		s.addCustomer(c)
	}
	s.api = s.faults.Wrap(s.apiHandler())
	s.admin = s.adminHandler()
	return s
}

// Faults returns the injector in front of the API.
func (s *Simulator) Faults() *fault.Injector { return s.faults }

type reqStateKey struct{}

// recOf returns the request-log entry of r, for the handlers to fill in.
func recOf(r *http.Request) *Request {
	if rec, ok := r.Context().Value(reqStateKey{}).(*Request); ok {
		return rec
	}
	return &Request{}
}

// ServeHTTP serves the API and, under /_sim/, the simulator's controls (no
// faults, no authentication, not logged):
//
//	/_sim/faults     the fault injector's admin (see fault.Injector.ServeAdmin)
//	/_sim/requests   GET the request log (?method=&path= filter), DELETE clears it
//	/_sim/codes      GET the codes sent (?to= filter), oldest first: the person's mailbox and phone
//	/_sim/customers  GET the customers (no passwords); POST a SimCustomer to seed one
//	/_sim/campaigns  GET the campaigns and their fields
//	/_sim/tokens     DELETE revokes every issued token
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, simAdmin) {
		s.admin.ServeHTTP(w, r)
		return
	}
	rec := &Request{Time: s.now(), Method: r.Method, Path: r.URL.Path}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		s.mu.Lock()
		if t := s.tokens[tok]; t != nil {
			rec.Scope = t.scope
		}
		s.mu.Unlock()
	}
	sw := &simlog.StatusWriter{ResponseWriter: w}
	s.api.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, rec)))
	rec.Status = sw.Status
	s.record(*rec)
}

func (s *Simulator) record(r Request) {
	s.requests.Add(r, simlog.Key{Method: r.Method, Route: r.Path})
}

// Requests returns the request log, oldest first.
func (s *Simulator) Requests() []Request { return s.requests.All() }

// CountRequests returns how many requests had method and URL path (e.g.
// "POST", "/auth"), whatever their answer; an empty method or path matches
// any. It counts past the log's bound.
func (s *Simulator) CountRequests(method, path string) int {
	return s.requests.Count(method, path, 0)
}

// ResetRequests clears the request log and the counts.
func (s *Simulator) ResetRequests() { s.requests.Reset() }

// Codes returns the verification codes sent, oldest first (the last
// DefaultMaxCodes).
func (s *Simulator) Codes() []SentCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentCode(nil), s.codes...)
}

// LastCode returns the last code sent to an e-mail address (any letter
// case) or mobile number.
func (s *Simulator) LastCode(to string) (string, bool) {
	to = contactKey(to)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.codes) - 1; i >= 0; i-- {
		if s.codes[i].To == to {
			return s.codes[i].Code, true
		}
	}
	return "", false
}

// Customers returns the customers, in creation order, without passwords.
func (s *Simulator) Customers() []SimCustomer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SimCustomer, len(s.customers))
	for i, c := range s.customers {
		out[i] = view(c)
	}
	return out
}

// AddCustomer seeds a customer and returns it as stored (without its
// password). Empty CustomerID, CampaignID, Card and FidelyCode are filled
// in; a CustomerID already used gets a new one. Uniqueness of e-mail and
// username is not checked: seeding is the caller's business.
func (s *Simulator) AddCustomer(c SimCustomer) SimCustomer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return view(s.addCustomer(c))
}

// RevokeTokens forgets every issued JWT and refresh token: the next call
// with one gets 998.
func (s *Simulator) RevokeTokens() {
	s.mu.Lock()
	clear(s.tokens)
	clear(s.refreshes)
	s.mu.Unlock()
}

// cardInUse reports whether a customer holds the card number (caller holds
// s.mu, or s is not shared yet).
func (s *Simulator) cardInUse(card string) bool {
	for _, c := range s.byID {
		if c.Card == card {
			return true
		}
	}
	return false
}

// addCustomer stores c, filling in ids (caller holds s.mu, or s is not
// shared yet).
func (s *Simulator) addCustomer(c SimCustomer) *SimCustomer {
	if c.CustomerID == "" || s.byID[c.CustomerID] != nil {
		for s.byID[strconv.Itoa(s.nextID)] != nil {
			s.nextID++
		}
		c.CustomerID = strconv.Itoa(s.nextID)
		s.nextID++
	}
	if c.CampaignID == "" && len(s.order) > 0 {
		c.CampaignID = s.order[0]
	}
	if c.Card == "" {
		// Skip the numbers of seeded cards: a card number is unique.
		for s.cardInUse(strconv.Itoa(s.nextCard)) {
			s.nextCard++
		}
		c.Card = strconv.Itoa(s.nextCard)
		s.nextCard++
	}
	if c.FidelyCode == "" {
		c.FidelyCode = fidelyCode(c.Card)
	}
	c.Email = strings.TrimSpace(c.Email)
	c.Mobile = normalizeMobile(c.Mobile)
	c.Privacy = maps.Clone(c.Privacy)
	c.Fields = maps.Clone(c.Fields)
	if c.Privacy == nil {
		c.Privacy = map[string]bool{}
	}
	if c.Fields == nil {
		c.Fields = map[string]any{}
	}
	p := &c
	s.customers = append(s.customers, p)
	s.byID[c.CustomerID] = p
	return p
}

// view is c as shown: no password, Registered set.
func view(c *SimCustomer) SimCustomer {
	v := *c
	v.Registered = c.Password != ""
	v.Password = ""
	v.Privacy = maps.Clone(c.Privacy)
	v.Fields = maps.Clone(c.Fields)
	return v
}

// fidelyCode derives a 14-digit barcode (EAN-14 style, with a check digit)
// from a card number.
func fidelyCode(card string) string {
	var d []byte
	for i := 0; i < len(card); i++ {
		if card[i] >= '0' && card[i] <= '9' {
			d = append(d, card[i])
		}
	}
	if len(d) > 12 {
		d = d[len(d)-12:]
	}
	body := "8" + strings.Repeat("0", 12-len(d)) + string(d)
	sum := 0
	for i := range 13 {
		v := int(body[12-i] - '0')
		if i%2 == 0 {
			v *= 3
		}
		sum += v
	}
	return body + strconv.Itoa((10-sum%10)%10)
}

// contactKey normalizes an e-mail address (lower case) or a mobile number
// (digits and a leading +).
func contactKey(v string) string {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "@") {
		return strings.ToLower(v)
	}
	return normalizeMobile(v)
}

func normalizeMobile(v string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(v) {
		if (r >= '0' && r <= '9') || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// newCode returns a random 6-digit code.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		return "000000"
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// sendCode "sends" a new code to to for purpose and remembers it under key
// (caller holds s.mu).
func (s *Simulator) sendCode(key, to, purpose string) {
	code := newCode()
	s.pending[key] = code
	s.codes = append(s.codes, SentCode{Time: s.now(), To: to, Code: code, Purpose: purpose})
	if len(s.codes) > DefaultMaxCodes {
		s.codes = append([]SentCode(nil), s.codes[len(s.codes)-DefaultMaxCodes:]...)
	}
}

// issue creates a JWT (and, if refresh is empty, a refresh token) for the
// scope (caller holds s.mu). It returns the JWT and the refresh token.
func (s *Simulator) issue(scope, campaign, customerID, refresh string) (string, string) {
	now := s.now()
	if len(s.tokens) >= tokenSweepAt {
		for k, t := range s.tokens {
			if !now.Before(t.expires) {
				delete(s.tokens, k)
			}
		}
		for k, t := range s.refreshes {
			if !now.Before(t.expires) {
				delete(s.refreshes, k)
			}
		}
	}
	exp := now.Add(s.jwtTTL)
	sub := customerID
	if sub == "" {
		sub = scope
	}
	claims, _ := json.Marshal(map[string]any{
		"sub": sub, "scope": scope, "campaignid": campaign, "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": exp.Unix(),
	})
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, s.jwtKey)
	m.Write([]byte(unsigned))
	jwt := unsigned + "." + enc.EncodeToString(m.Sum(nil))
	s.tokens[jwt] = &simToken{scope: scope, campaign: campaign, customerID: customerID, expires: exp}
	if refresh == "" {
		refresh = uuid.NewString()
		s.refreshes[refresh] = &simToken{scope: scope, campaign: campaign, customerID: customerID, expires: now.Add(s.refreshTTL)}
	}
	return jwt, refresh
}
