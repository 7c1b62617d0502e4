package resamania

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/simlog"
)

// Simulator defaults.
const (
	DefaultSimTokenTTL   = time.Hour         // lifetime of issued tokens
	DefaultRatePerMinute = 1000              // gateway rate limit per API key
	DefaultSpikeArrest   = 30                // gateway spike arrest per API key, per 100 ms
	DefaultMaxRequestLog = simlog.DefaultMax // requests kept in the log
)

const (
	defaultRootNetworkNode = 1
	firstContactID         = 2974000
	firstAddressID         = 14284000
	spikeArrestWindow      = 100 * time.Millisecond
	rateLimitWindow        = time.Minute
	maxSimBody             = 64 << 10
	tokenEndpointRoute     = "/oauth/v2/token"
	simAdminPrefix         = "/_sim/"
	tokenSweepAbove        = 4096 // issued tokens before expired ones are swept
	defaultItemsPerPage    = 30
	maxItemsPerPage        = 100
	contactContext         = "/contexts/Contact"
	personType             = "http://schema.org/Person"
	hydraCollectionType    = "hydra:Collection"
	hydraPartialViewType   = "hydra:PartialCollectionView"
	requiredMessage        = "required" // the message of a missing-field violation
)

// DefaultRequiredFields returns the fields POST /contacts requires by
// default: email, familyName, givenName, birthDate.
func DefaultRequiredFields() []string {
	return []string{"email", "familyName", "givenName", "birthDate"}
}

// SimConfig configures a Simulator.
type SimConfig struct {
	// Accounts are the clientTokens the simulator serves.
	Accounts []SimAccount `json:"accounts" yaml:"accounts"`
	// TokenTTL is the lifetime of issued tokens (expires_in); default 1 h.
	TokenTTL time.Duration `json:"tokenTTL" yaml:"tokenTTL"`
	// RateLimit is the gateway's limit per API key.
	RateLimit RateLimit `json:"rateLimit" yaml:"rateLimit"`
	// Faults are injected in front of the gateway (token endpoint and API;
	// not /_sim/). Change them at run time with Simulator.Faults.
	Faults fault.Config `json:"faults" yaml:"faults"`
	// MaxRequestLog bounds the request log (oldest dropped first); default
	// 100000, negative keeps no log. The counts of CountRequests and
	// CountResponses are never dropped.
	MaxRequestLog int `json:"maxRequestLog" yaml:"maxRequestLog"`
	// Clock is the simulator's time (token expiry, rate-limit windows);
	// default time.Now. Tests share a fake clock with the client.
	Clock func() time.Time `json:"-" yaml:"-"`
}

// SimAccount is one clientToken: its credentials, its network of clubs and
// its configuration of required fields.
type SimAccount struct {
	ClientToken  string `json:"clientToken" yaml:"clientToken"`
	ClientID     string `json:"clientId" yaml:"clientId"`
	ClientSecret string `json:"clientSecret" yaml:"clientSecret"`
	APIKey       string `json:"apiKey" yaml:"apiKey"` // X-Gravitee-Api-Key; unique across accounts
	// NetworkNodeID is the network's root node, above every club; a call
	// with only x-user-network-node-id set to it works across the network.
	// Default 1.
	NetworkNodeID int       `json:"networkNodeId" yaml:"networkNodeId"`
	Clubs         []SimClub `json:"clubs" yaml:"clubs"`
	// RequiredFields POST /contacts requires: top-level fields ("mobile",
	// "gender", "address", "sourceId"…) or address fields
	// ("address.postalCode"). Default DefaultRequiredFields.
	RequiredFields []string `json:"requiredFields" yaml:"requiredFields"`
	// Contacts are seeded at start, as by Simulator.AddContact.
	Contacts []Contact `json:"contacts,omitempty" yaml:"contacts,omitempty"`
	// Sales are seeded at start, after the contacts, as by
	// Simulator.AddSale.
	Sales []SimSale `json:"sales,omitempty" yaml:"sales,omitempty"`
}

// SimClub is a club of an account's network.
type SimClub struct {
	ID            int    `json:"id" yaml:"id"`
	NetworkNodeID int    `json:"networkNodeId" yaml:"networkNodeId"` // the club's own network node
	Name          string `json:"name" yaml:"name"`
	// NoSharing denies the club access to other clubs' contact records:
	// reading one gives the 400 `La ressource "…" n'existe pas.`
	NoSharing bool `json:"noSharing,omitempty" yaml:"noSharing,omitempty"`
}

// RateLimit is the gateway's limit per API key, in fixed windows. Zero
// fields take the defaults; negative fields switch that limit off (load
// tests).
type RateLimit struct {
	PerMinute   int `json:"perMinute" yaml:"perMinute"`     // default 1000
	SpikeArrest int `json:"spikeArrest" yaml:"spikeArrest"` // per 100 ms, default 30
}

// DefaultSimConfig is the demo account "demoapi" (client "demo-client",
// secret "demo-secret", API key "demo-api-key") with three clubs in one
// network (root node 100): Paris Bastille (club 1357, node 101), Lyon
// Part-Dieu (1358, node 102), Nice Masséna (1359, node 103). Two contacts
// are seeded: a prospect justine.doe@example.com in Lyon (mobile ending
// 1615) and a client john+test@example.com in Paris.
func DefaultSimConfig() SimConfig {
	const ct = "demoapi"
	return SimConfig{
		Accounts: []SimAccount{{
			ClientToken:   ct,
			ClientID:      "demo-client",
			ClientSecret:  "demo-secret",
			APIKey:        "demo-api-key",
			NetworkNodeID: 100,
			Clubs: []SimClub{
				{ID: 1357, NetworkNodeID: 101, Name: "Paris Bastille"},
				{ID: 1358, NetworkNodeID: 102, Name: "Lyon Part-Dieu"},
				{ID: 1359, NetworkNodeID: 103, Name: "Nice Masséna"},
			},
			Contacts: []Contact{
				{Email: "justine.doe@example.com", GivenName: "Justine", FamilyName: "Doe", BirthDate: "1992-04-22",
					Gender: "female", State: StateProspect, ClubID: ClubIRI(ct, 1358), Mobile: "+33612341615"},
				{Email: "john+test@example.com", GivenName: "Test", FamilyName: "John", BirthDate: "1990-01-01",
					State: StateClient, ClubID: ClubIRI(ct, 1357), Mobile: "+33698765432",
					Address: &Address{AddressCountry: "France", AddressLocality: "NICE", PostalCode: "06000", StreetAddress: "1 The Street"}},
			},
		}},
	}
}

// Simulator is an in-process Resamania behind its Gravitee gateway: the
// token endpoint with the three grants, contact search, reading and
// creation, the prospect transfer (contact migration requests validated
// with an SMS code, the SMS kept in an outbox: see SMS), the contact
// migration and the sale update, the Hydra error bodies, the rate limits,
// and the faults of a fault.Injector. It is an http.Handler, safe for
// concurrent use.
//
// It serves "{anything}/{clientToken}/…": whatever precedes a known
// clientToken is the environment, so BaseURL = server URL + "/resa2-staging"
// works; and "{anything}/oauth/v2/token" (the account found by API key). The
// reserved prefix /_sim/ holds its controls (see ServeHTTP).
type Simulator struct {
	now      func() time.Time
	tokenTTL time.Duration
	faults   *fault.Injector
	api      http.Handler // faults → gateway
	admin    http.Handler
	limits   *gatewayLimits

	// Set at construction, read-only afterwards.
	accounts map[string]*account // by clientToken
	byAPIKey map[string]*account
	order    []*account

	mu      sync.Mutex // guards the accounts' contacts, signature requests and sales, the tokens and the SMS outbox
	tokens  map[string]*simToken
	refresh map[string]*simToken
	sms     []SMS // the last maxSMS sent, oldest first

	requests *simlog.Log[Request]
}

// Request is one request the simulator received outside /_sim/, faulted
// or not.
type Request struct {
	Time          time.Time `json:"time"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`                  // the URL path as received
	Route         string    `json:"route"`                 // the route after the clientToken, ids as {id}: "/contacts", "/contacts/{id}/migrate", "/oauth/v2/token"; the path itself for an unknown route; empty if unrouted
	Query         string    `json:"query,omitempty"`       // the raw query
	ClientToken   string    `json:"clientToken,omitempty"` //
	ClubID        string    `json:"clubId,omitempty"`      // the x-user-club-id header
	NetworkNodeID string    `json:"networkNodeId,omitempty"`
	Grant         string    `json:"grant,omitempty"` // the grant of the bearer token used, or requested at the token endpoint
	Status        int       `json:"status"`          // 0 when nothing was written (the client gave up)
}

// Validate reports what NewSimulator would ignore: accounts without a
// clientToken, client id, secret or API key, or repeating another's
// clientToken or API key; clubs with a non-positive or repeated id; sales
// with a negative or repeated id.
func (c SimConfig) Validate() error {
	tokens, keys := map[string]bool{}, map[string]bool{}
	for i, a := range c.Accounts {
		switch {
		case a.ClientToken == "" || a.ClientID == "" || a.ClientSecret == "" || a.APIKey == "":
			return fmt.Errorf("resamania simulator: accounts[%d]: clientToken, clientId, clientSecret and apiKey are required", i)
		case !clientTokenRE.MatchString(a.ClientToken):
			return fmt.Errorf("resamania simulator: accounts[%d]: clientToken %q may hold only letters, digits and . _ ~ -", i, a.ClientToken)
		case tokens[a.ClientToken]:
			return fmt.Errorf("resamania simulator: accounts[%d]: clientToken %q is used twice", i, a.ClientToken)
		case keys[a.APIKey]:
			return fmt.Errorf("resamania simulator: accounts[%d]: its apiKey is used by another account", i)
		}
		tokens[a.ClientToken], keys[a.APIKey] = true, true
		clubs := map[int]bool{}
		for j, cl := range a.Clubs {
			if cl.ID <= 0 || clubs[cl.ID] {
				return fmt.Errorf("resamania simulator: accounts[%d].clubs[%d]: id %d is not positive or is used twice", i, j, cl.ID)
			}
			clubs[cl.ID] = true
		}
		sales := map[int]bool{}
		for j, sl := range a.Sales {
			if sl.ID < 0 || (sl.ID > 0 && sales[sl.ID]) {
				return fmt.Errorf("resamania simulator: accounts[%d].sales[%d]: id %d is negative or is used twice", i, j, sl.ID)
			}
			sales[sl.ID] = true
		}
	}
	return nil
}

// NewSimulator returns a simulator serving cfg's accounts. What Validate
// reports is ignored: the first account with a clientToken or API key wins,
// accounts lacking one are skipped, and so are clubs with a bad or repeated
// id; a sale with a bad or repeated id gets a new one.
func NewSimulator(cfg SimConfig) *Simulator {
	s := &Simulator{
		now:      cfg.Clock,
		tokenTTL: cfg.TokenTTL,
		faults:   fault.New(cfg.Faults),
		accounts: map[string]*account{},
		byAPIKey: map[string]*account{},
		tokens:   map[string]*simToken{},
		refresh:  map[string]*simToken{},
		requests: simlog.New[Request](cfg.MaxRequestLog),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = DefaultSimTokenTTL
	}
	s.limits = newGatewayLimits(cfg.RateLimit)
	for _, sa := range cfg.Accounts {
		if sa.ClientToken == "" || sa.ClientID == "" || sa.APIKey == "" || s.accounts[sa.ClientToken] != nil || s.byAPIKey[sa.APIKey] != nil {
			continue
		}
		a := newAccount(sa)
		s.accounts[a.ClientToken] = a
		s.byAPIKey[a.APIKey] = a
		s.order = append(s.order, a)
		for _, c := range sa.Contacts {
			a.add(c)
		}
		for _, sl := range sa.Sales {
			a.addSale(sl)
		}
	}
	s.api = s.faults.Wrap(http.HandlerFunc(s.gateway))
	s.admin = s.adminHandler()
	return s
}

// Faults returns the injector in front of the gateway.
func (s *Simulator) Faults() *fault.Injector { return s.faults }

// reqState travels in the request context from ServeHTTP to the handlers.
type reqState struct {
	rec     *Request
	acct    *account // from the path; nil for an environment-level token endpoint
	route   string   // the path after the clientToken
	tmpl    string   // the API route route matches ("/contacts/{id}"), or ""
	pathID  string   // the {id} segment of route, if tmpl has one
	matched bool
}

type reqStateKey struct{}

func stateOf(r *http.Request) *reqState {
	st, _ := r.Context().Value(reqStateKey{}).(*reqState)
	if st == nil {
		st = &reqState{rec: &Request{}}
	}
	return st
}

// ServeHTTP serves the gateway and, under /_sim/ (at the root or after any
// prefix, such as the environment), the simulator's controls (no faults, no
// authentication, not logged):
//
//	/_sim/faults     the fault injector's admin (see fault.Injector.ServeAdmin)
//	/_sim/requests   GET the request log (?method=&route= filter), DELETE clears it
//	/_sim/contacts   GET ?clientToken= the contacts; POST a Contact with "clientToken" to seed one
//	/_sim/sales      GET ?clientToken= the sales; POST a SimSale with "clientToken" to seed one
//	/_sim/sms        GET the SMS sent, oldest first (?signatureRequest= an IRI filters): the simulator's phone
//	/_sim/accounts   GET the accounts, clubs and IRIs (no secrets)
//	/_sim/tokens     DELETE revokes every issued token
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if i := adminIndex(r.URL.Path); i >= 0 {
		if i > 0 { // "/resa2-staging/_sim/faults" is "/_sim/faults"
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = r.URL.Path[i:], ""
			r2.URL = &u
			r = r2
		}
		s.admin.ServeHTTP(w, r)
		return
	}
	st := &reqState{rec: &Request{
		Time:          s.now(),
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		ClubID:        r.Header.Get("x-user-club-id"),
		NetworkNodeID: r.Header.Get("x-user-network-node-id"),
	}}
	st.acct, st.route, st.matched = s.routeOf(r.URL.Path)
	if st.matched {
		st.rec.Route = st.route
		if st.acct != nil {
			st.rec.ClientToken = st.acct.ClientToken
			st.tmpl, st.pathID = routeTemplate(st.route)
			if st.tmpl != "" {
				st.rec.Route = st.tmpl
			}
		}
	}
	sw := &simlog.StatusWriter{ResponseWriter: w}
	s.api.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st)))
	st.rec.Status = sw.Status
	s.record(*st.rec)
}

// adminIndex returns where the /_sim/ controls start in path, or -1. They
// are reached at the root or under any prefix (the environment).
func adminIndex(path string) int {
	if strings.HasSuffix(path, "/_sim") {
		return len(path) - len("/_sim")
	}
	return strings.Index(path, simAdminPrefix)
}

// routeOf splits a path at the first segment naming a known clientToken. A
// path ending in /oauth/v2/token with no clientToken is the
// environment-level token endpoint.
func (s *Simulator) routeOf(path string) (*account, string, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if a := s.accounts[seg]; a != nil {
			return a, "/" + strings.Join(segs[i+1:], "/"), true
		}
	}
	if strings.HasSuffix(strings.TrimRight(path, "/"), tokenEndpointRoute) {
		return nil, tokenEndpointRoute, true
	}
	return nil, "", false
}

// record logs r; routed requests are also counted.
func (s *Simulator) record(r Request) {
	if r.Route == "" {
		s.requests.Add(r)
		return
	}
	s.requests.Add(r, simlog.Key{Method: r.Method, Route: r.Route, Status: r.Status})
}

// Requests returns the request log, oldest first.
func (s *Simulator) Requests() []Request { return s.requests.All() }

// CountRequests returns how many routed requests had method and route
// (e.g. "POST", "/contacts"), whatever their answer; an empty method or
// route matches any. Unlike Requests it counts past the log's bound.
func (s *Simulator) CountRequests(method, route string) int {
	return s.CountResponses(method, route, 0)
}

// CountResponses is CountRequests for the requests answered status (0: any),
// e.g. CountResponses("POST", "/contacts", 201): the contacts created.
func (s *Simulator) CountResponses(method, route string, status int) int {
	return s.requests.Count(method, route, status)
}

// ResetRequests clears the request log and the counts.
func (s *Simulator) ResetRequests() { s.requests.Reset() }

// Contacts returns the current contacts of clientToken, in creation order
// (nil for an unknown clientToken).
func (s *Simulator) Contacts(clientToken string) []Contact {
	a := s.accounts[clientToken]
	if a == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, len(a.contacts))
	for i, c := range a.contacts {
		out[i] = c.view()
	}
	return out
}

// AddContact seeds a contact and returns it as stored. The simulator fills
// in what c leaves empty: ID (kept if it is an unused contact IRI of the
// account), Number ("C{id}"), State (prospect), ClubID (the first club,
// also replacing an IRI of no club of the account) and the address's ID. Email uniqueness is not checked: seeding is the
// caller's business. It returns the zero Contact for an unknown clientToken.
func (s *Simulator) AddContact(clientToken string, c Contact) Contact {
	a := s.accounts[clientToken]
	if a == nil {
		return Contact{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.add(c).view()
}

// RevokeTokens forgets every issued token: the next API call with one gets
// 401, as after a vendor-side revocation.
func (s *Simulator) RevokeTokens() {
	s.mu.Lock()
	clear(s.tokens)
	clear(s.refresh)
	s.mu.Unlock()
}

// account is a SimAccount and its state (guarded by Simulator.mu).
type account struct {
	SimAccount
	clubs      map[int]SimClub // by club id
	nodes      map[int]int     // network node id → club id, 0 for the root
	contacts   []*simContact
	byID       map[int]*simContact
	byEmail    map[string][]*simContact // by lower-cased email, archived contacts included
	nextID     int
	nextAddrID int
	signatures map[int]*simSignature // by id
	nextSigID  int
	sales      []*SimSaleState // in creation order
	salesByID  map[int]*SimSaleState
	nextSaleID int
}

func newAccount(sa SimAccount) *account {
	a := &account{
		SimAccount: sa,
		clubs:      map[int]SimClub{},
		nodes:      map[int]int{},
		byID:       map[int]*simContact{},
		byEmail:    map[string][]*simContact{},
		nextID:     firstContactID,
		nextAddrID: firstAddressID,
		signatures: map[int]*simSignature{},
		nextSigID:  firstSignatureRequestID,
		salesByID:  map[int]*SimSaleState{},
		nextSaleID: firstSaleID,
	}
	a.Contacts, a.Sales = nil, nil
	if a.NetworkNodeID <= 0 {
		a.NetworkNodeID = defaultRootNetworkNode
	}
	if len(a.RequiredFields) == 0 {
		a.RequiredFields = DefaultRequiredFields()
	}
	a.nodes[a.NetworkNodeID] = 0
	var clubs []SimClub
	for _, c := range sa.Clubs {
		if c.ID <= 0 || a.clubs[c.ID].ID != 0 {
			continue
		}
		a.clubs[c.ID] = c
		clubs = append(clubs, c)
		if _, taken := a.nodes[c.NetworkNodeID]; c.NetworkNodeID > 0 && !taken {
			a.nodes[c.NetworkNodeID] = c.ID
		}
	}
	a.Clubs = clubs
	return a
}

// simContact is a stored contact.
type simContact struct {
	id     int
	clubID int
	c      Contact
	// movedTo is the id of the contact a validated transfer created from
	// this one, 0 if none: the contact is then archived — readable by id,
	// but out of e-mail look-ups, searches and listings, no longer
	// counted for e-mail uniqueness, and refused as the source of another
	// transfer or migration.
	movedTo int
}

func (c *simContact) archived() bool { return c.movedTo != 0 }

func (c *simContact) view() Contact {
	v := c.c
	if v.Address != nil {
		addr := *v.Address
		v.Address = &addr
	}
	return v
}

// add stores c, filling in ids and defaults (caller holds Simulator.mu, or
// the account is not shared yet).
func (a *account) add(c Contact) *simContact {
	id, ok := IDFromIRI(a.ClientToken, "contacts", c.ID)
	if !ok || a.byID[id] != nil {
		id = a.nextID
	}
	a.nextID = max(a.nextID, id+1)
	c.ID = ContactIRI(a.ClientToken, id)
	if c.Number == "" {
		c.Number = "C" + strconv.Itoa(id)
	}
	if c.State == "" {
		c.State = StateProspect
	}
	clubID, ok := IDFromIRI(a.ClientToken, "clubs", c.ClubID)
	if _, known := a.clubs[clubID]; !ok || !known {
		clubID = 0
		if len(a.Clubs) > 0 {
			clubID = a.Clubs[0].ID
		}
	}
	c.ClubID = ""
	if clubID != 0 {
		c.ClubID = ClubIRI(a.ClientToken, clubID)
	}
	if c.Address != nil {
		addr := *c.Address
		if addr.ID == "" {
			addr.ID = "/" + a.ClientToken + "/addresses/" + strconv.Itoa(a.nextAddrID)
			a.nextAddrID++
		}
		if addr.AddressCountryISO == "" {
			addr.AddressCountryISO = countryISO(addr.AddressCountry)
		}
		c.Address = &addr
	}
	sc := &simContact{id: id, clubID: clubID, c: c}
	a.contacts = append(a.contacts, sc)
	a.byID[id] = sc
	k := strings.ToLower(c.Email)
	a.byEmail[k] = append(a.byEmail[k], sc)
	return sc
}

// countryISO knows the few countries the demo uses.
func countryISO(country string) string {
	switch strings.ToLower(strings.TrimSpace(country)) {
	case "france", "fr":
		return "FR"
	case "belgique", "belgium", "be":
		return "BE"
	case "suisse", "switzerland", "ch":
		return "CH"
	case "espagne", "spain", "es":
		return "ES"
	case "luxembourg", "lu":
		return "LU"
	}
	return ""
}
