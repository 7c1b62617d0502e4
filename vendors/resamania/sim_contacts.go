package resamania

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// Routes of the API, ids as {id}.
const (
	routeContacts           = "/contacts"
	routeContact            = "/contacts/{id}"
	routeNetworkSearch      = "/network/contact_search"
	routeMigrate            = "/contacts/{id}/migrate"
	routeMigrationRequests  = "/contact_migration_requests"
	routeTransitions        = "/signature_requests/{id}/transitions"
	routeSaleUpdateContact  = "/sale/{id}/update_contact"
	routeSalesUpdateContact = "/sales/{id}/update_contact" // also seen in the vendor's documents
)

// routeTemplate returns the API route a path after the clientToken
// matches, and its {id} segment; "" for none.
func routeTemplate(route string) (tmpl, id string) {
	segs := strings.Split(strings.TrimPrefix(route, "/"), "/")
	switch len(segs) {
	case 1:
		if route == routeContacts || route == routeMigrationRequests {
			return route, ""
		}
	case 2:
		if route == routeNetworkSearch {
			return route, ""
		}
		if segs[0] == "contacts" && segs[1] != "" {
			return routeContact, segs[1]
		}
	case 3:
		if segs[1] == "" {
			return "", ""
		}
		switch {
		case segs[0] == "contacts" && segs[2] == "migrate":
			return routeMigrate, segs[1]
		case segs[0] == "signature_requests" && segs[2] == "transitions":
			return routeTransitions, segs[1]
		case segs[0] == "sale" && segs[2] == "update_contact":
			return routeSaleUpdateContact, segs[1]
		case segs[0] == "sales" && segs[2] == "update_contact":
			return routeSalesUpdateContact, segs[1]
		}
	}
	return "", ""
}

// serveAPI routes an API call (after the gateway). As in Symfony, routing
// comes before the firewall: an unknown route is 404 even without a token.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request, a *account, st *reqState) {
	type handler func(http.ResponseWriter, *http.Request, *account, *simToken)
	var h handler
	allow := ""
	on := func(method string, hf handler) {
		if allow != "" {
			allow += ", "
		}
		allow += method
		if r.Method == method {
			h = hf
		}
	}
	switch st.tmpl {
	case routeContacts:
		on(http.MethodGet, s.listContacts)
		on(http.MethodPost, s.createContact)
	case routeNetworkSearch:
		on(http.MethodGet, s.searchNetwork)
	case routeContact:
		on(http.MethodGet, s.getContact)
	case routeMigrate:
		on(http.MethodPut, s.migrateContact)
	case routeMigrationRequests:
		on(http.MethodPost, s.createMigrationRequest)
	case routeTransitions:
		on(http.MethodPost, s.transitionSignatureRequest)
	case routeSaleUpdateContact, routeSalesUpdateContact:
		on(http.MethodPut, s.updateSaleContact)
	}
	if h == nil {
		if allow != "" {
			w.Header().Set("Allow", allow)
			hydraError(w, http.StatusMethodNotAllowed, `No route found for "`+r.Method+" "+r.URL.Path+`": Method Not Allowed (Allow: `+allow+`)`)
			return
		}
		hydraError(w, http.StatusNotFound, `No route found for "`+r.Method+" "+r.URL.Path+`"`)
		return
	}
	t := s.bearer(w, r, a)
	if t == nil {
		return
	}
	h(w, r, a, t)
}

// Hydra (API Platform) error bodies.

func hydraError(w http.ResponseWriter, status int, desc string) {
	writeJSON(w, status, "application/ld+json; charset=utf-8", map[string]string{
		"@context":          "/contexts/Error",
		"@type":             "hydra:Error",
		"hydra:title":       "An error occurred",
		"hydra:description": desc,
	})
}

func itemNotFound(w http.ResponseWriter, iri string) {
	hydraError(w, http.StatusNotFound, `Item not found for "`+iri+`".`)
}

func unauthorizedEndpoint(w http.ResponseWriter) {
	hydraError(w, http.StatusForbidden, CodeUnauthorizedEndpoint)
}

type violationJSON struct {
	PropertyPath string `json:"propertyPath"`
	Message      string `json:"message"`
}

func writeViolations(w http.ResponseWriter, vs []vendors.FieldError) {
	list := make([]violationJSON, len(vs))
	desc := make([]string, len(vs))
	for i, v := range vs {
		list[i] = violationJSON{PropertyPath: v.Field, Message: v.Message}
		desc[i] = v.Field + ": " + v.Message
	}
	writeJSON(w, http.StatusBadRequest, "application/ld+json; charset=utf-8", map[string]any{
		"@context":          "/contexts/ConstraintViolationList",
		"@type":             "ConstraintViolationList",
		"hydra:title":       "An error occurred",
		"hydra:description": strings.Join(desc, "\n"),
		"violations":        list,
	})
}

// club returns the club an IRI names.
func (a *account) club(iri string) (SimClub, bool) {
	id, ok := IDFromIRI(a.ClientToken, "clubs", iri)
	if !ok {
		return SimClub{}, false
	}
	c, ok := a.clubs[id]
	return c, ok
}

// node returns the club whose network node an IRI names (0 for the root).
func (a *account) node(iri string) (int, bool) {
	id, ok := IDFromIRI(a.ClientToken, "network_nodes", iri)
	if !ok {
		return 0, false
	}
	club, ok := a.nodes[id]
	return club, ok
}

// callScope is where a call is made from: one club, or (club 0) the whole
// network; set is false when nothing placed the call.
type callScope struct {
	club int
	set  bool
}

// scope resolves x-user-club-id and x-user-network-node-id (IRIs; a bare
// id, an unknown IRI or a node of another club gives 404) and the club of a
// club token (headers naming another club give 403). It writes the error
// and returns false on failure.
func (s *Simulator) scope(w http.ResponseWriter, r *http.Request, a *account, t *simToken) (callScope, bool) {
	var sc callScope
	if h := r.Header.Get("x-user-club-id"); h != "" {
		c, ok := a.club(h)
		if !ok {
			itemNotFound(w, h)
			return sc, false
		}
		sc = callScope{club: c.ID, set: true}
	}
	if h := r.Header.Get("x-user-network-node-id"); h != "" {
		club, ok := a.node(h)
		if !ok || (sc.club != 0 && club != 0 && club != sc.club) {
			itemNotFound(w, h)
			return sc, false
		}
		if sc.club == 0 {
			sc.club = club
		}
		sc.set = true
	}
	if t.grant == GrantClubCredentials {
		c, _ := a.club(t.subject)
		if sc.set && sc.club != c.ID {
			unauthorizedEndpoint(w)
			return sc, false
		}
		sc = callScope{club: c.ID, set: true}
	}
	return sc, true
}

func (sc callScope) contains(c *simContact) bool { return sc.club == 0 || c.clubID == sc.club }

// listContacts serves GET /contacts[?email=]: the contacts of the scope,
// the email matched exactly (case aside) after URL decoding — so a raw "+"
// (a space once decoded) finds nothing.
func (s *Simulator) listContacts(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	if t.grant == GrantContactCredentials {
		unauthorizedEndpoint(w)
		return
	}
	sc, ok := s.scope(w, r, a, t)
	if !ok {
		return
	}
	if !sc.set {
		hydraError(w, http.StatusNotFound, "Item not found.")
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	matches := a.find(q, func(c *simContact) bool { return sc.contains(c) })
	members := make([]personJSON, len(matches))
	for i, c := range matches {
		members[i] = person(c.c, "")
	}
	s.mu.Unlock()
	writeCollection(w, r, "/"+a.ClientToken+contactContext, "/"+a.ClientToken+"/contacts", members)
}

// searchNetwork serves GET /network/contact_search[?email=]: every club of
// the network, limited view.
func (s *Simulator) searchNetwork(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	if t.grant == GrantContactCredentials {
		unauthorizedEndpoint(w)
		return
	}
	sc, ok := s.scope(w, r, a, t)
	if !ok {
		return
	}
	if !sc.set {
		hydraError(w, http.StatusNotFound, "Item not found.")
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	matches := a.find(q, func(*simContact) bool { return true })
	members := make([]networkPersonJSON, len(matches))
	for i, c := range matches {
		members[i] = networkPerson(c.c)
	}
	s.mu.Unlock()
	writeCollection(w, r, "/"+a.ClientToken+contactContext, "/"+a.ClientToken+"/contacts", members)
}

// find returns the contacts matching the email filter of q (all when q has
// none) and keep, archived ones aside (caller holds Simulator.mu).
func (a *account) find(q url.Values, keep0 func(*simContact) bool) []*simContact {
	keep := func(c *simContact) bool { return !c.archived() && keep0(c) }
	var out []*simContact
	if emails, ok := q["email"]; ok {
		email := ""
		if len(emails) > 0 {
			email = emails[0]
		}
		if email == "" {
			return nil
		}
		for _, c := range a.byEmail[strings.ToLower(email)] {
			if keep(c) {
				out = append(out, c)
			}
		}
		return out
	}
	for _, c := range a.contacts {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// getContact serves GET /contacts/{id}. A contact token reads only itself;
// a club without data-sharing rights reading another club's contact gets
// the French 400. An archived contact (the source of a validated transfer)
// is still served, as it was.
func (s *Simulator) getContact(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	iri := "/" + a.ClientToken + stateOf(r).route
	id, ok := IDFromIRI(a.ClientToken, "contacts", iri)
	if !ok {
		hydraError(w, http.StatusNotFound, "Not Found")
		return
	}
	if t.grant == GrantContactCredentials && t.subject != iri {
		unauthorizedEndpoint(w)
		return
	}
	sc, ok := s.scope(w, r, a, t)
	if !ok {
		return
	}
	s.mu.Lock()
	c := a.byID[id]
	var p personJSON
	if c != nil {
		p = person(c.c, "/"+a.ClientToken+contactContext)
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		itemNotFound(w, iri)
	case sc.club != 0 && c.clubID != sc.club && a.clubs[sc.club].NoSharing:
		hydraError(w, http.StatusBadRequest, `La ressource "`+iri+`" n'existe pas.`)
	default:
		writeJSON(w, http.StatusOK, "application/ld+json; charset=utf-8", p)
	}
}

var (
	emailRE  = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	mobileRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// jsonContentType refuses (415) a body declared as anything but JSON.
func jsonContentType(w http.ResponseWriter, r *http.Request) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && mt != "application/ld+json" {
			hydraError(w, http.StatusUnsupportedMediaType, `The content-type "`+mt+`" is not supported. Supported MIME types are "application/ld+json", "application/json".`)
			return false
		}
	}
	return true
}

// readJSON decodes a JSON object body into v and returns it raw too; it
// writes the 400 (unreadable, not an object, a field of the wrong type) and
// returns false on failure. Error messages never quote submitted values.
func readJSON(w http.ResponseWriter, r *http.Request, v any) (map[string]json.RawMessage, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	if err != nil {
		hydraError(w, http.StatusBadRequest, "The request body could not be read.")
		return nil, false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		hydraError(w, http.StatusBadRequest, "Syntax error")
		return nil, false
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			hydraError(w, http.StatusBadRequest, `The type of the "`+te.Field+`" attribute must be "`+te.Type.String()+`", "`+te.Value+`" given.`)
			return nil, false
		}
		hydraError(w, http.StatusBadRequest, "Syntax error")
		return nil, false
	}
	return raw, true
}

// createContact serves POST /contacts: IRIs first (a bare or unknown clubId
// or sourceId gives 404), then the required fields and formats (400
// ConstraintViolationList), then email uniqueness across the clientToken
// (400 email-already-used); 201 with the Person.
//
// [inferred] E-mail uniqueness binds prospects, clients and old clients,
// not temp contacts: a temp contact is made for a person who already
// exists elsewhere (the target of PUT /contacts/{id}/migrate), so it may
// reuse a used e-mail, and it does not make its e-mail used for others.
// Without that rule the documented migration could never be set up.
func (s *Simulator) createContact(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	if t.grant == GrantContactCredentials {
		unauthorizedEndpoint(w)
		return
	}
	if !jsonContentType(w, r) {
		return
	}
	sc, ok := s.scope(w, r, a, t)
	if !ok {
		return
	}
	var in NewContact
	raw, ok := readJSON(w, r, &in)
	if !ok {
		return
	}

	club := sc.club
	if in.ClubID != "" {
		c, ok := a.club(in.ClubID)
		if !ok {
			itemNotFound(w, in.ClubID)
			return
		}
		club = c.ID
	}
	if in.SourceID != "" {
		if rest, ok := strings.CutPrefix(in.SourceID, "/"+a.ClientToken+"/"); !ok || rest == "" {
			itemNotFound(w, in.SourceID)
			return
		}
	}

	vs := validate(a.RequiredFields, raw, in)
	if club == 0 && !hasViolation(vs, "clubId") {
		vs = append(vs, vendors.FieldError{Field: "clubId", Message: requiredMessage})
	}
	if len(vs) > 0 {
		writeViolations(w, vs)
		return
	}

	s.mu.Lock()
	if in.State != StateTemp && a.emailUsed(in.Email) {
		s.mu.Unlock()
		hydraError(w, http.StatusBadRequest, CodeEmailAlreadyUsed)
		return
	}
	c := a.add(Contact{
		Email: in.Email, GivenName: in.GivenName, FamilyName: in.FamilyName, BirthDate: in.BirthDate,
		Gender: in.Gender, State: in.State, ClubID: ClubIRI(a.ClientToken, club), Mobile: in.Mobile,
		SourceID: in.SourceID, Address: newAddress(in.Address),
	})
	p := person(c.c, "/"+a.ClientToken+contactContext)
	s.mu.Unlock()
	w.Header().Set("Location", p.ID)
	w.Header().Set("Content-Location", p.ID)
	writeJSON(w, http.StatusCreated, "application/ld+json; charset=utf-8", p)
}

// emailUsed reports whether a contact that counts for e-mail uniqueness
// (not temp, not archived) has email (caller holds Simulator.mu).
func (a *account) emailUsed(email string) bool {
	if email == "" {
		return false
	}
	for _, c := range a.byEmail[strings.ToLower(email)] {
		if !c.archived() && c.c.State != StateTemp {
			return true
		}
	}
	return false
}

// newAddress keeps the four fields a client may set.
func newAddress(in *Address) *Address {
	if in == nil {
		return nil
	}
	return &Address{AddressCountry: in.AddressCountry, AddressLocality: in.AddressLocality,
		StreetAddress: in.StreetAddress, PostalCode: in.PostalCode}
}

// validate returns the violations of a POST /contacts body: required
// fields (present, not null, not empty) in configured order, then formats.
func validate(required []string, raw map[string]json.RawMessage, in NewContact) []vendors.FieldError {
	var vs []vendors.FieldError
	for _, f := range required {
		if !present(raw, f) {
			vs = append(vs, vendors.FieldError{Field: f, Message: requiredMessage})
		}
	}
	check := func(field, value string, ok bool, msg string) {
		if value != "" && !ok && !hasViolation(vs, field) {
			vs = append(vs, vendors.FieldError{Field: field, Message: msg})
		}
	}
	_, dateErr := time.Parse(time.DateOnly, in.BirthDate)
	check("birthDate", in.BirthDate, dateErr == nil, "This value is not a valid date.")
	check("email", in.Email, emailRE.MatchString(in.Email), "This value is not a valid email address.")
	check("mobile", in.Mobile, mobileRE.MatchString(in.Mobile), "This value is not a valid phone number.")
	check("state", in.State, in.State == StateProspect || in.State == StateTemp, "The value you selected is not a valid choice.")
	check("gender", in.Gender, in.Gender == "male" || in.Gender == "female", "The value you selected is not a valid choice.")
	return vs
}

// present reports whether path ("mobile", "address.postalCode") holds a
// value in raw: not null, not "", not {} or [].
func present(raw map[string]json.RawMessage, path string) bool {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := raw[head]
	if !ok {
		return false
	}
	if nested {
		var sub map[string]json.RawMessage
		return json.Unmarshal(v, &sub) == nil && present(sub, rest)
	}
	switch strings.TrimSpace(string(v)) {
	case "null", `""`, "{}", "[]":
		return false
	}
	return true
}

func hasViolation(vs []vendors.FieldError, field string) bool {
	for _, v := range vs {
		if v.Field == field {
			return true
		}
	}
	return false
}

// Reply shapes, with the nulls Resamania sends.

type personJSON struct {
	Context             string       `json:"@context,omitempty"`
	ID                  string       `json:"@id"`
	Type                string       `json:"@type"`
	Number              string       `json:"number"`
	Address             *addressJSON `json:"address"`
	BirthDate           *string      `json:"birthDate"`
	Email               *string      `json:"email"`
	FamilyName          *string      `json:"familyName"`
	Gender              *string      `json:"gender"`
	GivenName           *string      `json:"givenName"`
	PictureID           *string      `json:"pictureId"`
	Tags                []string     `json:"tags"`
	ClubID              string       `json:"clubId"`
	Landline            *string      `json:"landline"`
	Mobile              *string      `json:"mobile"`
	SourceID            *string      `json:"sourceId"`
	ParentalIDValidated bool         `json:"parentalIdentificationValidated"`
	State               string       `json:"state"`
	InitialSalepersonID *string      `json:"initialSalepersonId"`
}

type addressJSON struct {
	ID                string  `json:"@id"`
	Type              string  `json:"@type"`
	AddressCountry    *string `json:"addressCountry"`
	AddressCountryISO *string `json:"addressCountryIso"`
	AddressLocality   *string `json:"addressLocality"`
	PostalCode        *string `json:"postalCode"`
	StreetAddress     *string `json:"streetAddress"`
	Supplement        string  `json:"supplement"`
}

type networkPersonJSON struct {
	ID                 string  `json:"@id"`
	Type               string  `json:"@type"`
	Number             string  `json:"number"`
	BirthDate          *string `json:"birthDate"`
	FamilyName         *string `json:"familyName"`
	Gender             *string `json:"gender"`
	GivenName          *string `json:"givenName"`
	PictureID          *string `json:"pictureId"`
	ClubID             string  `json:"clubId"`
	State              string  `json:"state"`
	PartialPhoneNumber *string `json:"partialPhoneNumber"`
}

// null is nil for "", the JSON null Resamania sends for an empty field.
func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func person(c Contact, context string) personJSON {
	p := personJSON{
		Context: context, ID: c.ID, Type: personType, Number: c.Number,
		BirthDate: null(c.BirthDate), Email: null(c.Email), FamilyName: null(c.FamilyName), Gender: null(c.Gender),
		GivenName: null(c.GivenName), PictureID: null(c.PictureID), Tags: []string{}, ClubID: c.ClubID,
		Landline: null(c.Landline), Mobile: null(c.Mobile), SourceID: null(c.SourceID), State: c.State,
	}
	if c.Address != nil {
		p.Address = &addressJSON{
			ID: c.Address.ID, Type: "Address", AddressCountry: null(c.Address.AddressCountry),
			AddressCountryISO: null(c.Address.AddressCountryISO), AddressLocality: null(c.Address.AddressLocality),
			PostalCode: null(c.Address.PostalCode), StreetAddress: null(c.Address.StreetAddress), Supplement: c.Address.Supplement,
		}
	}
	return p
}

func networkPerson(c Contact) networkPersonJSON {
	return networkPersonJSON{
		ID: c.ID, Type: personType, Number: c.Number, BirthDate: null(c.BirthDate), FamilyName: null(c.FamilyName),
		Gender: null(c.Gender), GivenName: null(c.GivenName), PictureID: null(c.PictureID), ClubID: c.ClubID,
		State: c.State, PartialPhoneNumber: null(maskPhone(c.Mobile)),
	}
}

// maskPhone keeps the last four digits: "+33612341615" → "******1615".
func maskPhone(phone string) string {
	var digits []byte
	for i := 0; i < len(phone); i++ {
		if phone[i] >= '0' && phone[i] <= '9' {
			digits = append(digits, phone[i])
		}
	}
	if len(digits) < 4 {
		return ""
	}
	return "******" + string(digits[len(digits)-4:])
}

type collectionJSON[T any] struct {
	Context    string    `json:"@context"`
	ID         string    `json:"@id"`
	Type       string    `json:"@type"`
	Members    []T       `json:"hydra:member"`
	TotalItems int       `json:"hydra:totalItems"`
	View       *viewJSON `json:"hydra:view,omitempty"`
}

type viewJSON struct {
	ID       string `json:"@id"`
	Type     string `json:"@type"`
	First    string `json:"hydra:first"`
	Last     string `json:"hydra:last"`
	Next     string `json:"hydra:next,omitempty"`
	Previous string `json:"hydra:previous,omitempty"`
}

// writeCollection writes one page of all (query page, itemsPerPage) as a
// hydra:Collection of context whose @id is id.
func writeCollection[T any](w http.ResponseWriter, r *http.Request, context, id string, all []T) {
	q := r.URL.Query()
	page, per := 1, defaultItemsPerPage
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			hydraError(w, http.StatusBadRequest, "Page should not be less than 1")
			return
		}
		page = n
	}
	if n, err := strconv.Atoi(q.Get("itemsPerPage")); err == nil && n >= 1 {
		per = min(n, maxItemsPerPage)
	}
	total := len(all)
	from := min((page-1)*per, total)
	to := min(from+per, total)
	out := collectionJSON[T]{
		Context: context, ID: id, Type: hydraCollectionType, Members: all[from:to], TotalItems: total,
	}
	if out.Members == nil {
		out.Members = []T{}
	}
	if total > per {
		last := max((total+per-1)/per, 1)
		at := func(p int) string {
			q.Set("page", strconv.Itoa(p))
			return id + "?" + q.Encode()
		}
		out.View = &viewJSON{ID: at(page), Type: hydraPartialViewType, First: at(1), Last: at(last)}
		if page < last {
			out.View.Next = at(page + 1)
		}
		if page > 1 {
			out.View.Previous = at(page - 1)
		}
	}
	writeJSON(w, http.StatusOK, "application/ld+json; charset=utf-8", out)
}
