package cloudsuite

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/simlog"
)

// The demo client and origin of DefaultSimConfig.
const (
	DemoClientID     = "demo-cloudsuite"
	DemoClientSecret = "demo-cloudsuite-secret"
	DemoOrigin       = "DEMO"
)

// Simulator defaults and bounds.
const (
	DefaultMaxRequestLog = simlog.DefaultMax
	DefaultSimTokenTTL   = 300 * time.Second
	DefaultSimPageSize   = 100
	MaxSimPageSize       = 1000 // the largest page_size honoured
	firstUserID          = 15001
	firstProfileID       = 2101
	maxSimBody           = 64 << 10
	maxSimTokens         = 1024 // issued tokens before expired ones are swept
	simAdmin             = "/_sim/"
)

// SimConfig configures a Simulator.
type SimConfig struct {
	// ClientID and ClientSecret are the OAuth2 client the token endpoint
	// accepts (client credentials).
	ClientID     string `json:"clientId" yaml:"clientId"`
	ClientSecret string `json:"clientSecret" yaml:"clientSecret"`
	// Origins are the origin codes that exist; a request naming another
	// origin is answered 404 {"detail":"Not found."}. AddUser creates the
	// origin it names.
	Origins []string `json:"origins" yaml:"origins"`
	// TokenTTL is the lifetime of issued tokens (expires_in); default 300 s.
	TokenTTL time.Duration `json:"tokenTTL" yaml:"tokenTTL"`
	// PageSize is the default page size of lists (default 100); the query
	// parameter page_size overrides it per request, up to MaxSimPageSize.
	PageSize int `json:"pageSize" yaml:"pageSize"`
	// Faults are injected in front of the token endpoint and the API (not
	// /_sim/). Change them at run time with Simulator.Faults or
	// /_sim/faults.
	Faults fault.Config `json:"faults" yaml:"faults"`
	// MaxRequestLog bounds the request log (oldest dropped first); default
	// 100000, negative keeps no log. The counts of CountRequests are never
	// dropped.
	MaxRequestLog int `json:"maxRequestLog,omitempty" yaml:"maxRequestLog,omitempty"`
}

// String describes the configuration without the client secret.
func (c SimConfig) String() string {
	return fmt.Sprintf("cloudsuite.SimConfig{clientId: %s, origins: %v, tokenTTL: %v, pageSize: %d}",
		c.ClientID, c.Origins, c.TokenTTL, c.PageSize)
}

// GoString describes the configuration without the client secret.
func (c SimConfig) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the client secret.
func (c SimConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// DefaultSimConfig is the demo client (DemoClientID / DemoClientSecret)
// with one origin, DemoOrigin, no users, tokens of 300 s, pages of 100 and
// no faults.
func DefaultSimConfig() SimConfig {
	return SimConfig{
		ClientID: DemoClientID, ClientSecret: DemoClientSecret,
		Origins:  []string{DemoOrigin},
		TokenTTL: DefaultSimTokenTTL, PageSize: DefaultSimPageSize,
	}
}

// SimOption configures a Simulator beyond its SimConfig.
type SimOption func(*Simulator)

// WithSimClock sets the simulator's clock (token expiry, create dates of
// new users and profiles, the request log); default time.Now. Tests move
// it to expire tokens.
func WithSimClock(now func() time.Time) SimOption {
	return func(s *Simulator) {
		if now != nil {
			s.now = now
		}
	}
}

// Request is one request the simulator received outside /_sim/, faulted or
// not. It never holds a body, a header, a token or a credential.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"` // the list filters and paging parameters only
	Status int       `json:"status"`          // 0 when nothing was written (the client gave up)
}

// SimUser is a user to seed with AddUser (or POST
// /_sim/origins/{origin}/users, with the JSON names below; create_date may
// be a naive ISO time "2023-01-18T09:23:02.507764", which is UTC).
type SimUser struct {
	Key          string    `json:"key,omitempty"` // "" → a new UUID v4
	Email        string    `json:"email"`
	FirstName    string    `json:"first_name"`
	LastName     string    `json:"last_name"`
	CreateDate   time.Time `json:"create_date"`  // zero → the simulator clock's now
	Registration string    `json:"registration"` // "" → "new"
	Active       bool      `json:"active"`
	// Profiles are the user's profiles: each is merged over a default
	// profile (see GET /api/userprofile/{id}) and gets an id (its own "id"
	// if it is a positive integer not in use), "user" (the user's numeric
	// id) and, unless given, a create_date.
	Profiles []map[string]any `json:"profiles,omitempty"`
}

// UnmarshalJSON reads a SimUser, create_date as the API writes it
// (naive ISO, with or without fraction), as RFC 3339 or as a date.
func (u *SimUser) UnmarshalJSON(b []byte) error {
	type plain SimUser
	var w struct {
		plain
		CreateDate *string `json:"create_date"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*u = SimUser(w.plain)
	u.CreateDate = time.Time{}
	if w.CreateDate != nil && *w.CreateDate != "" {
		t, ok := parseDateTime(*w.CreateDate)
		if !ok {
			return &json.UnmarshalTypeError{Value: "string", Type: timeType, Field: "create_date"}
		}
		u.CreateDate = t
	}
	return nil
}

// Simulator is an in-process CloudSuite: the Keycloak token endpoint
// (POST /realms/{realm}/protocol/openid-connect/token, client
// credentials) and the REST API (Django REST Framework) under /api/ (also
// spelt /API/): users of an origin (list with the filters registration,
// inactive, active and create_date__gte, paged with page and page_size and
// absolute next/previous URLs; get; create; partial update, where
// {"registration":"new","active":false} sends the activation e-mail),
// customers of an origin (create or replace with PUT, create with POST,
// partial update with PATCH, get, list) and user profiles (get).
//
// Every API route needs a bearer token from the token endpoint; an absent,
// unknown or expired one is answered 401 in DRF's words. Errors are DRF
// bodies: {"detail":"Not found."}, {"field":["message"]}. The faults of a
// fault.Injector are in front of the token endpoint and the API. It is an
// http.Handler, safe for concurrent use. Its controls are under /_sim/
// (see ServeHTTP).
type Simulator struct {
	cfg      SimConfig // normalized
	now      func() time.Time
	faults   *fault.Injector
	api      http.Handler
	admin    http.Handler
	requests *simlog.Log[Request]

	mu            sync.Mutex // guards everything below
	origins       map[string]*simOrigin
	profiles      map[int64]map[string]any
	tokens        map[string]time.Time // token → expiry
	activations   map[string]int       // user key → activation e-mails sent
	nextUserID    int64
	nextProfileID int64
}

// simOrigin is the data of one origin.
type simOrigin struct {
	users     map[string]*simUser
	customers map[string]map[string]any
}

// simUser is a stored user.
type simUser struct {
	ID                  int64
	Key                 string
	Email               string
	FirstName           string
	LastName            string
	CreateDate          time.Time // UTC, microseconds
	Registration        string
	Active              bool
	AuthorisedCustomers []string
	Profiles            []int64
}

// userJSON is a user on the wire, in the API's field order.
type userJSON struct {
	ID                  int64    `json:"id"`
	Key                 string   `json:"key"`
	Email               string   `json:"email"`
	FirstName           string   `json:"first_name"`
	LastName            string   `json:"last_name"`
	CreateDate          string   `json:"create_date"`
	Registration        string   `json:"registration"`
	Active              bool     `json:"active"`
	AuthorisedCustomers []string `json:"authorised_customers"`
	UserProfiles        []int64  `json:"user_profiles"`
}

func (u *simUser) wire() userJSON {
	return userJSON{
		ID: u.ID, Key: u.Key, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		CreateDate: formatDateTime(u.CreateDate), Registration: u.Registration, Active: u.Active,
		AuthorisedCustomers: append([]string{}, u.AuthorisedCustomers...),
		UserProfiles:        append([]int64{}, u.Profiles...),
	}
}

// asMap is the user as User returns it: the API's field names, Go values
// (id int64, active bool, authorised_customers []string, user_profiles
// []int64, create_date string).
func (u *simUser) asMap() map[string]any {
	w := u.wire()
	return map[string]any{
		"id": w.ID, "key": w.Key, "email": w.Email, "first_name": w.FirstName, "last_name": w.LastName,
		"create_date": w.CreateDate, "registration": w.Registration, "active": w.Active,
		"authorised_customers": w.AuthorisedCustomers, "user_profiles": w.UserProfiles,
	}
}

func (u *simUser) clone() *simUser {
	c := *u
	c.AuthorisedCustomers = slices.Clone(u.AuthorisedCustomers)
	c.Profiles = slices.Clone(u.Profiles)
	return &c
}

// String describes the simulator without its secrets: its origins and
// their numbers of users and customers.
func (s *Simulator) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.origins))
	for o := range s.origins {
		names = append(names, o)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("cloudsuite.Simulator{")
	for i, o := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d users, %d customers", o, len(s.origins[o].users), len(s.origins[o].customers))
	}
	b.WriteString("}")
	return b.String()
}

// GoString describes the simulator without its secrets.
func (s *Simulator) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without the secrets.
func (s *Simulator) LogValue() slog.Value { return slog.StringValue(s.String()) }

// NewSimulator returns a simulator of cfg: zero TokenTTL and PageSize take
// their defaults.
func NewSimulator(cfg SimConfig, opts ...SimOption) *Simulator {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultSimTokenTTL
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultSimPageSize
	}
	cfg.PageSize = min(cfg.PageSize, MaxSimPageSize)
	cfg.Origins = slices.Clone(cfg.Origins)
	logMax := cfg.MaxRequestLog
	if logMax == 0 {
		logMax = DefaultMaxRequestLog
	}
	s := &Simulator{
		cfg:      cfg,
		now:      time.Now,
		faults:   fault.New(cfg.Faults),
		requests: simlog.New[Request](logMax),
		tokens:   map[string]time.Time{},
	}
	for _, opt := range opts {
		opt(s)
	}
	s.resetData()
	s.api = s.faults.Wrap(http.HandlerFunc(s.serveAPI))
	s.admin = s.adminHandler()
	return s
}

// resetData empties the users, customers, profiles and activation counts
// and recreates the configured origins.
func (s *Simulator) resetData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.origins = map[string]*simOrigin{}
	for _, o := range s.cfg.Origins {
		s.originLocked(o)
	}
	s.profiles = map[int64]map[string]any{}
	s.activations = map[string]int{}
	s.nextUserID, s.nextProfileID = firstUserID, firstProfileID
}

// originLocked returns origin o, creating it (caller holds s.mu).
func (s *Simulator) originLocked(o string) *simOrigin {
	org := s.origins[o]
	if org == nil {
		org = &simOrigin{users: map[string]*simUser{}, customers: map[string]map[string]any{}}
		s.origins[o] = org
	}
	return org
}

// Faults returns the injector in front of the token endpoint and the API.
func (s *Simulator) Faults() *fault.Injector { return s.faults }

// Reset empties the simulator: users, customers, profiles, activation
// counts and the request log go; the configured origins remain (empty);
// the faults go back to SimConfig.Faults with no FailNext pending. Issued
// tokens stay valid (see RevokeTokens).
func (s *Simulator) Reset() {
	s.resetData()
	s.requests.Reset()
	s.faults.Set(s.cfg.Faults)
	s.faults.FailNext(0, 0)
}

// RevokeTokens makes every issued token invalid: the next API call of a
// client gets a 401 and must fetch a new one.
func (s *Simulator) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ServeHTTP serves the token endpoint, the API and, under /_sim/, the
// simulator's controls (no faults, no authentication, not logged):
//
//	/_sim/faults                      the fault injector's admin (see fault.Injector.ServeAdmin)
//	/_sim/requests                    GET the request log (?method=&path=), DELETE clears it
//	/_sim/reset                       POST: Reset
//	/_sim/tokens                      DELETE: RevokeTokens
//	/_sim/origins                     GET: the origins and their numbers of users and customers
//	/_sim/origins/{origin}/users      GET: the users; POST a SimUser to seed it (as AddUser)
//	/_sim/origins/{origin}/customers  GET: the customers; POST a customer {"key": …, …} to seed it (as AddCustomer)
//	/_sim/activations                 GET: the activation e-mails sent, by user key
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, simAdmin) {
		s.admin.ServeHTTP(w, r)
		return
	}
	rec := Request{Time: s.now(), Method: r.Method, Path: r.URL.Path, Query: loggedQuery(r.URL.RawQuery)}
	sw := &simlog.StatusWriter{ResponseWriter: w}
	s.api.ServeHTTP(sw, r)
	rec.Status = sw.Status
	s.requests.Add(rec, simlog.Key{Method: rec.Method, Route: rec.Path, Status: rec.Status})
}

// loggedParams are the query parameters the request log keeps: the list
// filters and paging, nothing a caller could put a credential in.
var loggedParams = []string{"registration", "inactive", "active", "create_date__gte", "page", "page_size"}

// loggedQuery is the logged query: loggedParams only, values cut short and
// printable.
func loggedQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, _ := url.ParseQuery(raw)
	out := url.Values{}
	for _, k := range loggedParams {
		for _, v := range q[k] {
			if len(v) > 64 {
				v = v[:64]
			}
			v = strings.Map(func(r rune) rune {
				if r < 0x20 || r > 0x7e {
					return '?'
				}
				return r
			}, v)
			out[k] = append(out[k], v)
		}
	}
	return out.Encode()
}

// Requests returns the request log, oldest first (the last
// SimConfig.MaxRequestLog).
func (s *Simulator) Requests() []Request { return s.requests.All() }

// CountRequests returns how many requests had method and URL path (e.g.
// "PATCH", "/api/origin/DEMO/user/…"), whatever their answer; an empty
// method or path matches any. It counts past the log's bound.
func (s *Simulator) CountRequests(method, path string) int {
	return s.requests.Count(method, path, 0)
}

// ResetRequests clears the request log and the counts.
func (s *Simulator) ResetRequests() { s.requests.Reset() }

// AddUser seeds user u in origin (created if it does not exist) and
// returns its key. A user with u's key is replaced (keeping its numeric
// id; its old profiles go). Nothing else is checked: seeding is the
// caller's business.
func (s *Simulator) AddUser(origin string, u SimUser) (key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	org := s.originLocked(origin)
	key = u.Key
	if key == "" {
		key = newUUID()
	}
	su := &simUser{
		Key: key, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		CreateDate: naiveUTC(u.CreateDate), Registration: u.Registration, Active: u.Active,
	}
	if u.CreateDate.IsZero() {
		su.CreateDate = naiveUTC(s.now())
	}
	if su.Registration == "" {
		su.Registration = "new"
	}
	if old := org.users[key]; old != nil {
		su.ID = old.ID
		for _, id := range old.Profiles {
			delete(s.profiles, id)
		}
	} else {
		su.ID = s.nextUserID
		s.nextUserID++
	}
	for _, p := range u.Profiles {
		su.Profiles = append(su.Profiles, s.addProfileLocked(su.ID, p))
	}
	org.users[key] = su
	return key
}

// addProfileLocked stores profile p of user userID over the default
// profile and returns its id (caller holds s.mu).
func (s *Simulator) addProfileLocked(userID int64, p map[string]any) int64 {
	prof := defaultProfile()
	for k, v := range p {
		prof[k] = deepCopy(v)
	}
	id, ok := toInt64(p["id"])
	if !ok || id <= 0 || s.profiles[id] != nil {
		for s.profiles[s.nextProfileID] != nil {
			s.nextProfileID++
		}
		id = s.nextProfileID
		s.nextProfileID++
	}
	prof["id"], prof["user"] = id, userID
	if v, ok := p["create_date"]; !ok || v == nil || v == "" {
		prof["create_date"] = formatDateTime(naiveUTC(s.now()))
	}
	s.profiles[id] = prof
	return id
}

// defaultProfile is a user profile as CloudSuite stores one entered at
// registration (seed 004), empty.
func defaultProfile() map[string]any {
	return map[string]any{
		"id": int64(0), "user": int64(0), "name": "", "attention": "", "street1": "", "house_number": "",
		"addition": "", "street2": "", "zip": "", "city": "", "country": "NL", "subdivision": nil,
		"company_telephone_number": "", "delivery": true, "delivery_name": "", "delivery_attention": "",
		"delivery_street1": "", "delivery_house_number": "", "delivery_addition": "", "delivery_street2": "",
		"delivery_zip": "", "delivery_city": "", "delivery_country": "NL", "delivery_subdivision": nil,
		"delivery_telephone_number": "", "department": "", "vat": "", "coc": "", "web": "",
		"account_code": "", "industry": nil, "create_date": "", "modified_date": nil,
	}
}

// User returns user key of origin, with the API's field names (see
// simUser.asMap for the value types).
func (s *Simulator) User(origin, key string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if org := s.origins[origin]; org != nil {
		if u := org.users[key]; u != nil {
			return u.asMap(), true
		}
	}
	return nil, false
}

// Users returns the users of origin, sorted by create_date then key.
func (s *Simulator) Users(origin string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if org := s.origins[origin]; org != nil {
		for _, u := range sortedUsers(org) {
			out = append(out, u.asMap())
		}
	}
	return out
}

// Profile returns user profile id.
func (s *Simulator) Profile(id int64) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[id]
	if p == nil {
		return nil, false
	}
	return deepCopy(p).(map[string]any), true
}

// Customer returns customer key of origin as stored (JSON values: numbers
// are json.Number).
func (s *Simulator) Customer(origin, key string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if org := s.origins[origin]; org != nil {
		if c := org.customers[key]; c != nil {
			return deepCopy(c).(map[string]any), true
		}
	}
	return nil, false
}

// AddCustomer seeds customer key in origin (created if it does not
// exist), replacing any customer with that key: c's fields, "key" set to
// key.
func (s *Simulator) AddCustomer(origin, key string, c map[string]any) {
	cust := map[string]any{}
	for k, v := range c {
		cust[k] = deepCopy(v)
	}
	cust["key"] = key
	s.mu.Lock()
	defer s.mu.Unlock()
	s.originLocked(origin).customers[key] = cust
}

// Customers returns how many customers origin has.
func (s *Simulator) Customers(origin string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if org := s.origins[origin]; org != nil {
		return len(org.customers)
	}
	return 0
}

// ActivationEmails returns how many activation e-mails were sent to user
// key: one per successful PATCH whose body sets both "registration":"new"
// and "active":false.
func (s *Simulator) ActivationEmails(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.activations[key]
}

// sortedUsers returns org's users by create_date, then key (caller holds
// s.mu).
func sortedUsers(org *simOrigin) []*simUser {
	out := make([]*simUser, 0, len(org.users))
	for _, u := range org.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *simUser) int {
		if c := a.CreateDate.Compare(b.CreateDate); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// Dates as the API writes them: Python's isoformat of a naive UTC
// datetime, microseconds only when not zero.
const (
	naiveLayout         = "2006-01-02T15:04:05"
	naiveFractionLayout = "2006-01-02T15:04:05.000000"
)

func naiveUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func formatDateTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.Format(naiveLayout)
	}
	return t.Format(naiveFractionLayout)
}

// parseDateTime reads a date/time as Django's DateTimeField does: ISO 8601
// with "T" or a space, with or without seconds and fraction, naive (UTC)
// or with an offset, or a date alone (midnight UTC).
func parseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{
		"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04",
		time.RFC3339, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04Z07:00", "2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return naiveUTC(t), true
		}
	}
	return time.Time{}, false
}

var timeType = reflect.TypeFor[time.Time]()

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// toInt64 reads an integer held as a Go or JSON number.
func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// deepCopy copies JSON-like values (maps, slices of any, and the slice
// types of the simulator), so that callers never share stored state.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	case []string:
		return slices.Clone(x)
	case []int64:
		return slices.Clone(x)
	case []map[string]any:
		l := make([]map[string]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e).(map[string]any)
		}
		return l
	}
	return v
}
