package engage

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/simlog"
)

// The demo account of DefaultSimConfig.
const (
	DemoUsername = "demo-engage"
	DemoPassword = "demo-engage-password"
)

// Simulator defaults.
const (
	DefaultMaxRequestLog = simlog.DefaultMax
	firstContactID       = 1000001
	maxSimBody           = 64 << 10
	simAdmin             = "/_sim/"
	apiRoot              = "/api/rest/"
)

// SimConfig configures a Simulator.
type SimConfig struct {
	// Username and Password are the API system user (HTTP Basic).
	Username string `json:"username" yaml:"username"`
	Password string `json:"password" yaml:"password"`
	// Faults are injected in front of the API (not /_sim/). Change them at
	// run time with Simulator.Faults or /_sim/faults.
	Faults fault.Config `json:"faults" yaml:"faults"`
}

// DefaultSimConfig is the demo account: DemoUsername / DemoPassword, no
// faults, no contacts.
func DefaultSimConfig() SimConfig {
	return SimConfig{Username: DemoUsername, Password: DemoPassword}
}

// Request is one request the simulator received outside /_sim/, faulted or
// not. It never holds a body, a header or an identifier value.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"` // "identifierType=EMAIL" on contact/update; never the identifier itself
	Status int       `json:"status"`          // 0 when nothing was written (the client gave up)
}

// Simulator is an in-process Mapp Engage REST API: contact/get, create and
// update under {anything}/api/rest/v19/ and {anything}/api/rest/, with HTTP
// Basic auth (403 when wrong), case-sensitive identifier types, 400
// NO_SUCH_OBJECT for a missing contact, 400 OBJECT_ALREADY_EXISTS for a
// reused identifier, attributes merged by name, and the faults of a
// fault.Injector. It is an http.Handler, safe for concurrent use. Its
// controls are under /_sim/ (see ServeHTTP).
type Simulator struct {
	username, password string
	faults             *fault.Injector
	api                http.Handler
	admin              http.Handler

	mu       sync.Mutex // guards contacts and nextID
	contacts []*Contact
	nextID   int64

	requests *simlog.Log[Request]
}

// NewSimulator returns a simulator of cfg.
func NewSimulator(cfg SimConfig) *Simulator {
	s := &Simulator{
		username: cfg.Username, password: cfg.Password,
		faults:   fault.New(cfg.Faults),
		nextID:   firstContactID,
		requests: simlog.New[Request](DefaultMaxRequestLog),
	}
	s.api = s.faults.Wrap(http.HandlerFunc(s.serveAPI))
	s.admin = s.adminHandler()
	return s
}

// Faults returns the injector in front of the API.
func (s *Simulator) Faults() *fault.Injector { return s.faults }

// ServeHTTP serves the API and, under /_sim/, the simulator's controls (no
// faults, no authentication, not logged):
//
//	/_sim/faults    the fault injector's admin (see fault.Injector.ServeAdmin)
//	/_sim/requests  GET the request log (?method=&path= filter), DELETE clears it
//	/_sim/contacts  GET the contacts; POST a Contact to seed it (as AddContact)
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, simAdmin) {
		s.admin.ServeHTTP(w, r)
		return
	}
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path}
	if t := r.URL.Query().Get("identifierType"); t != "" {
		rec.Query = loggedQuery(t)
	}
	sw := &simlog.StatusWriter{ResponseWriter: w}
	s.api.ServeHTTP(sw, r)
	rec.Status = sw.Status
	s.record(rec)
}

// loggedQuery is the logged query: the identifier type only (cut short),
// never the identifier.
func loggedQuery(t string) string {
	if len(t) > 16 {
		t = t[:16]
	}
	return "identifierType=" + strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, t)
}

func (s *Simulator) record(r Request) {
	s.requests.Add(r, simlog.Key{Method: r.Method, Route: r.Path})
}

// Requests returns the request log, oldest first (the last
// DefaultMaxRequestLog).
func (s *Simulator) Requests() []Request { return s.requests.All() }

// CountRequests returns how many requests had method and URL path (e.g.
// "POST", "/api/rest/v19/contact/get"), whatever their answer; an empty
// method or path matches any. It counts past the log's bound.
func (s *Simulator) CountRequests(method, path string) int {
	return s.requests.Count(method, path, 0)
}

// ResetRequests clears the request log and the counts.
func (s *Simulator) ResetRequests() { s.requests.Reset() }

// Contacts returns the contacts, in creation order.
func (s *Simulator) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, len(s.contacts))
	for i, c := range s.contacts {
		out[i] = clone(c)
	}
	return out
}

// AddContact seeds a contact and returns it as stored. A zero or already
// used ID gets a new one; attributes are merged by name (the last wins).
// Uniqueness of the identifiers is not checked: seeding is the caller's
// business.
func (s *Simulator) AddContact(c Contact) Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.addContact(c))
}

// addContact stores c (caller holds s.mu).
func (s *Simulator) addContact(c Contact) *Contact {
	if c.ID <= 0 || s.byID(c.ID) != nil {
		for s.byID(s.nextID) != nil {
			s.nextID++
		}
		c.ID = s.nextID
		s.nextID++
	}
	c.Attributes = mergeAttributes(nil, c.Attributes)
	p := &c
	s.contacts = append(s.contacts, p)
	return p
}

func (s *Simulator) byID(id int64) *Contact {
	for _, c := range s.contacts {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// find returns the contact of an identifier (caller holds s.mu). E-mail
// addresses compare without letter case.
func (s *Simulator) find(typ, value string) *Contact {
	if typ == TypeID {
		id, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return nil
		}
		return s.byID(id)
	}
	for _, c := range s.contacts {
		if value != "" && sameIdentifier(typ, identifierOf(c, typ), value) {
			return c
		}
	}
	return nil
}

func identifierOf(c *Contact, typ string) string {
	switch typ {
	case TypeEmail:
		return c.EmailAddress
	case TypeMobile:
		return c.MobileNumber
	case TypeAppAlias:
		return c.ApplicationAlias
	case TypeExternal:
		return c.Identifier
	case TypeID:
		return strconv.FormatInt(c.ID, 10)
	}
	return ""
}

func sameIdentifier(typ, a, b string) bool {
	if typ == TypeEmail {
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return strings.TrimSpace(a) == strings.TrimSpace(b)
}

// taken reports whether another contact than self uses one of c's
// identifiers (caller holds s.mu).
func (s *Simulator) taken(c Contact, self *Contact) bool {
	for _, typ := range []string{TypeEmail, TypeMobile, TypeAppAlias, TypeExternal} {
		v := identifierOf(&c, typ)
		if v == "" {
			continue
		}
		if o := s.find(typ, v); o != nil && o != self {
			return true
		}
	}
	return false
}

// mergeAttributes sets each of add in attrs by name (the last wins),
// keeping the order of first appearance.
func mergeAttributes(attrs, add []Attribute) []Attribute {
	out := slices.Clone(attrs)
	for _, a := range add {
		if a.Name == "" {
			continue
		}
		if i := slices.IndexFunc(out, func(b Attribute) bool { return b.Name == a.Name }); i >= 0 {
			out[i].Value = a.Value
		} else {
			out = append(out, a)
		}
	}
	return out
}

func clone(c *Contact) Contact {
	v := *c
	v.Attributes = slices.Clone(c.Attributes)
	return v
}

// serveAPI routes {anything}/api/rest[/v19]/contact/{get,create,update}.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, apiRoot)
	if i < 0 {
		s.fail(w, http.StatusNotFound, CodeInvalidRequest, "Not found")
		return
	}
	method := r.URL.Path[i+len(apiRoot):]
	method = strings.TrimPrefix(method, APIVersion+"/")
	switch method {
	case "contact/get", "contact/create", "contact/update":
	default:
		s.fail(w, http.StatusNotFound, CodeInvalidRequest, "Not found")
		return
	}
	if !s.authorized(r) {
		s.fail(w, http.StatusForbidden, CodePermissionDenied, "Access denied")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, http.StatusMethodNotAllowed, CodeInvalidRequest, "Request method '"+r.Method+"' is not supported")
		return
	}
	switch method {
	case "contact/get":
		s.handleGet(w, r)
	case "contact/create":
		s.handleCreate(w, r)
	default:
		s.handleUpdate(w, r)
	}
}

func (s *Simulator) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && s.username != "" &&
		subtle.ConstantTimeCompare([]byte(u), []byte(s.username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.password)) == 1
}

// fail answers Engage's error body.
func (s *Simulator) fail(w http.ResponseWriter, status int, code, msg string) {
	actor := errorActorClient
	if status >= 500 {
		actor = errorActorServer
	}
	writeJSON(w, status, map[string]string{"errorActor": actor, "errorCode": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// typeError answers an identifier type Engage cannot deserialize.
func (s *Simulator) typeError(w http.ResponseWriter, t string) {
	if len(t) > 32 {
		t = t[:32]
	}
	s.fail(w, http.StatusBadRequest, CodeInvalidParameter,
		"Cannot deserialize value of type `ContactIdentifierType` from String \""+t+
			"\": not one of the values accepted for Enum class: [EMAIL, MOBILE, APP_ALIAS, EXTERNAL, ID]")
}

// decode reads a JSON body into v, answering 400 INVALID_REQUEST when it
// cannot.
func (s *Simulator) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(v); err != nil {
		s.fail(w, http.StatusBadRequest, CodeInvalidRequest, "The request body is not readable JSON")
		return false
	}
	return true
}

func (s *Simulator) handleGet(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	if !s.decode(w, r, &in) {
		return
	}
	if !ValidIdentifierType(in.Type) {
		s.typeError(w, in.Type)
		return
	}
	if strings.TrimSpace(in.Value) == "" {
		s.fail(w, http.StatusBadRequest, CodeMissingParameter, "Parameter value is mandatory")
		return
	}
	s.mu.Lock()
	c := s.find(in.Type, in.Value)
	var out Contact
	if c != nil {
		out = clone(c)
	}
	s.mu.Unlock()
	if c == nil {
		s.fail(w, http.StatusBadRequest, CodeNoSuchObject, "Contact with identifier="+in.Value+" does not exist.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in Contact
	if !s.decode(w, r, &in) {
		return
	}
	if in.EmailAddress == "" && in.MobileNumber == "" && in.ApplicationAlias == "" {
		s.fail(w, http.StatusBadRequest, CodeMissingParameter,
			"At least one of emailAddress, mobileNumber or applicationAlias is mandatory")
		return
	}
	in.ID = 0
	s.mu.Lock()
	if s.taken(in, nil) {
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, CodeObjectAlreadyExists, "Contact already exists.")
		return
	}
	out := clone(s.addContact(in))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handleUpdate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ, value := q.Get("identifierType"), q.Get("unifiedIdentifierName")
	if typ == "" || value == "" {
		s.fail(w, http.StatusBadRequest, CodeMissingParameter,
			"Parameter unifiedIdentifierName and identifierType are mandatory for contact update.")
		return
	}
	if !ValidIdentifierType(typ) {
		s.typeError(w, typ)
		return
	}
	var in struct {
		EmailAddress string      `json:"emailAddress"`
		MobileNumber string      `json:"mobileNumber"`
		Attributes   []Attribute `json:"attributes"`
	}
	if !s.decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.find(typ, value)
	if c == nil {
		s.fail(w, http.StatusBadRequest, CodeNoSuchObject, "Contact with identifier="+value+" does not exist.")
		return
	}
	next := clone(c)
	if in.EmailAddress != "" {
		next.EmailAddress = in.EmailAddress
	}
	if in.MobileNumber != "" {
		next.MobileNumber = in.MobileNumber
	}
	if s.taken(next, c) {
		s.fail(w, http.StatusBadRequest, CodeObjectAlreadyExists, "Another contact has this identifier.")
		return
	}
	next.Attributes = mergeAttributes(next.Attributes, in.Attributes)
	*c = next
	writeJSON(w, http.StatusOK, clone(c))
}

// adminHandler serves the controls under /_sim/.
func (s *Simulator) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/faults", s.faults.ServeAdmin())
	mux.HandleFunc("GET /_sim/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"/_sim/faults":   "GET, PUT/PATCH (partial), POST {failNext, status}, DELETE: the fault injector",
			"/_sim/requests": "GET (?method=&path=), DELETE: the request log",
			"/_sim/contacts": "GET: the contacts; POST a contact to seed it",
		})
	})
	s.requests.ServeAdmin(mux, "path", func(r Request) (string, string) { return r.Method, r.Path })
	mux.HandleFunc("GET /_sim/contacts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Contacts())
	})
	mux.HandleFunc("POST /_sim/contacts", func(w http.ResponseWriter, r *http.Request) {
		var c Contact
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(&c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid contact"})
			return
		}
		writeJSON(w, http.StatusCreated, s.AddContact(c))
	})
	return mux
}
