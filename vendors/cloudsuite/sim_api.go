package cloudsuite

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DRF's messages, as the simulator answers them.
const (
	msgNotFound        = "Not found."
	msgInvalidPage     = "Invalid page."
	msgNotProvided     = "Authentication credentials were not provided."
	msgTokenNotValid   = "Given token not valid for any token type"
	msgRequired        = "This field is required."
	msgBlank           = "This field may not be blank."
	msgNull            = "This field may not be null."
	msgNotString       = "Not a valid string."
	msgNotBoolean      = "Must be a valid boolean."
	msgInvalidEmail    = "Enter a valid email address."
	msgInvalidDateTime = "Enter a valid date/time."
	msgTooLarge        = "Request body too large."
)

// route kinds of the API.
type routeKind int

const (
	routeNone routeKind = iota
	routeUserList
	routeUser
	routeCustomerList
	routeCustomer
	routeProfile
)

// allowed are the methods of each route.
var allowed = map[routeKind][]string{
	routeUserList:     {http.MethodGet, http.MethodPost},
	routeUser:         {http.MethodGet, http.MethodPatch},
	routeCustomerList: {http.MethodGet, http.MethodPost},
	routeCustomer:     {http.MethodGet, http.MethodPut, http.MethodPatch},
	routeProfile:      {http.MethodGet},
}

// apiRoute is a matched API path.
type apiRoute struct {
	kind   routeKind
	origin string
	key    string // user or customer key
	id     int64  // profile id
}

// matchRoute reads an API path: /api/ (or /API/) then origin/{o}/user/,
// origin/{o}/user/{key}, origin/{o}/customer/, origin/{o}/customer/{key},
// or userprofile/{id}, each with or without a trailing slash.
func matchRoute(escapedPath string) apiRoute {
	if len(escapedPath) < 5 || !strings.EqualFold(escapedPath[:5], "/api/") {
		return apiRoute{}
	}
	rest := strings.TrimSuffix(escapedPath[5:], "/")
	segs := strings.Split(rest, "/")
	for i, seg := range segs {
		v, err := url.PathUnescape(seg)
		if err != nil || v == "" {
			return apiRoute{}
		}
		segs[i] = v
	}
	switch {
	case len(segs) == 2 && segs[0] == "userprofile":
		id, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil || id <= 0 {
			return apiRoute{}
		}
		return apiRoute{kind: routeProfile, id: id}
	case len(segs) == 3 && segs[0] == "origin" && segs[2] == "user":
		return apiRoute{kind: routeUserList, origin: segs[1]}
	case len(segs) == 4 && segs[0] == "origin" && segs[2] == "user":
		return apiRoute{kind: routeUser, origin: segs[1], key: segs[3]}
	case len(segs) == 3 && segs[0] == "origin" && segs[2] == "customer":
		return apiRoute{kind: routeCustomerList, origin: segs[1]}
	case len(segs) == 4 && segs[0] == "origin" && segs[2] == "customer":
		return apiRoute{kind: routeCustomer, origin: segs[1], key: segs[3]}
	}
	return apiRoute{}
}

// isTokenPath reports whether p is /realms/{realm}/protocol/openid-connect/token.
func isTokenPath(p string) bool {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	return len(segs) == 5 && segs[0] == "realms" && segs[1] != "" &&
		segs[2] == "protocol" && segs[3] == "openid-connect" && segs[4] == "token"
}

// serveAPI routes the token endpoint and the API. An API request is
// matched (404), authenticated (401), checked for its method (405), then
// its origin must exist (404).
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	if isTokenPath(r.URL.Path) {
		s.handleToken(w, r)
		return
	}
	rt := matchRoute(r.URL.EscapedPath())
	if rt.kind == routeNone {
		detail(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !s.authenticate(w, r) {
		return
	}
	if !slices.Contains(allowed[rt.kind], r.Method) {
		w.Header().Set("Allow", strings.Join(allowed[rt.kind], ", "))
		detail(w, http.StatusMethodNotAllowed, "Method \""+printable(r.Method, 16)+"\" not allowed.")
		return
	}
	if rt.kind != routeProfile && !s.originExists(rt.origin) {
		detail(w, http.StatusNotFound, msgNotFound)
		return
	}
	switch rt.kind {
	case routeProfile:
		s.handleProfile(w, rt.id)
	case routeUserList:
		if r.Method == http.MethodGet {
			s.handleListUsers(w, r, rt.origin)
		} else {
			s.handleCreateUser(w, r, rt.origin)
		}
	case routeUser:
		if r.Method == http.MethodGet {
			s.handleGetUser(w, rt.origin, rt.key)
		} else {
			s.handlePatchUser(w, r, rt.origin, rt.key)
		}
	case routeCustomerList:
		if r.Method == http.MethodGet {
			s.handleListCustomers(w, r, rt.origin)
		} else {
			s.handleCreateCustomer(w, r, rt.origin)
		}
	case routeCustomer:
		switch r.Method {
		case http.MethodGet:
			s.handleGetCustomer(w, rt.origin, rt.key)
		case http.MethodPut:
			s.handlePutCustomer(w, r, rt.origin, rt.key)
		default:
			s.handlePatchCustomer(w, r, rt.origin, rt.key)
		}
	}
}

func (s *Simulator) originExists(o string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.origins[o] != nil
}

// authenticate checks the bearer token, answering 401 in DRF's words
// (simplejwt's for a bad or expired token) when it fails.
func (s *Simulator) authenticate(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		detail(w, http.StatusUnauthorized, msgNotProvided)
		return false
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	valid := ok && s.now().Before(exp)
	if ok && !valid {
		delete(s.tokens, tok)
	}
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": msgTokenNotValid, "code": "token_not_valid"})
		return false
	}
	return true
}

// handleToken is Keycloak's token endpoint, client credentials only. The
// client authenticates with client_id and client_secret in the form or
// with HTTP Basic.
func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "HTTP method not allowed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSimBody)
	if err := r.ParseForm(); err != nil {
		if tooLarge(err) {
			oauthError(w, http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large")
			return
		}
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid form")
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing form parameter: grant_type")
		return
	}
	id, sec := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, sec = u, p
	}
	if s.cfg.ClientID == "" ||
		subtle.ConstantTimeCompare([]byte(id), []byte(s.cfg.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(sec), []byte(s.cfg.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	if grant != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	tok := rand.Text() + rand.Text()
	ttl := s.cfg.TokenTTL
	s.mu.Lock()
	now := s.now()
	if len(s.tokens) >= maxSimTokens {
		for t, exp := range s.tokens {
			if !now.Before(exp) {
				delete(s.tokens, t)
			}
		}
	}
	s.tokens[tok] = now.Add(ttl)
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		RefreshExpiresIn int64  `json:"refresh_expires_in"`
		TokenType        string `json:"token_type"`
		NotBeforePolicy  int64  `json:"not-before-policy"`
		Scope            string `json:"scope"`
	}{tok, int64(ttl / time.Second), 0, "Bearer", 0, "openid profile email"})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// detail answers DRF's {"detail": msg}.
func detail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"detail": msg})
}

// fieldErrors answers DRF's validation error: 400 {"field": ["message"]}.
func fieldErrors(w http.ResponseWriter, errs map[string][]string) {
	writeJSON(w, http.StatusBadRequest, errs)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// printable cuts s to n bytes and replaces what is not printable ASCII.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// readObject reads a JSON object body (numbers as json.Number), answering
// DRF's errors when it cannot: 413 past 64 KiB, 415 for a body that is not
// JSON, 400 for malformed JSON or JSON that is not an object. An empty body
// is an empty object.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			detail(w, http.StatusUnsupportedMediaType, "Unsupported media type \""+printable(ct, 64)+"\" in request.")
			return nil, false
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	if err != nil {
		if tooLarge(err) {
			detail(w, http.StatusRequestEntityTooLarge, msgTooLarge)
			return nil, false
		}
		detail(w, http.StatusBadRequest, "JSON parse error - could not read the body")
		return nil, false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		detail(w, http.StatusBadRequest, "JSON parse error - the body is not valid JSON")
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		detail(w, http.StatusBadRequest, "JSON parse error - extra data after the JSON value")
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		fieldErrors(w, map[string][]string{"non_field_errors": {"Invalid data. Expected a dictionary, but got " + pyType(v) + "."}})
		return nil, false
	}
	return obj, true
}

// pyType is the Python type name of a decoded JSON value, as DRF names it.
func pyType(v any) string {
	switch x := v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case nil:
		return "NoneType"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "int"
		}
		return "float"
	}
	return "dict"
}

// page is DRF's PageNumberPagination reply.
type page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []any   `json:"results"`
}

// paginate answers items as DRF's PageNumberPagination does: page (1-based,
// or "last"; out of range → 404 "Invalid page."), page_size (default
// SimConfig.PageSize, at most MaxSimPageSize; unreadable → default), and
// next/previous as absolute URLs on the request's host keeping the other
// query parameters.
func (s *Simulator) paginate(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	size := s.cfg.PageSize
	if n, err := strconv.Atoi(q.Get("page_size")); err == nil && n > 0 {
		size = min(n, MaxSimPageSize)
	}
	pages := max(1, (len(items)+size-1)/size)
	num := 1
	if p := q.Get("page"); p != "" {
		if p == "last" {
			num = pages
		} else if n, err := strconv.Atoi(p); err == nil && n >= 1 && n <= pages {
			num = n
		} else {
			detail(w, http.StatusNotFound, msgInvalidPage)
			return
		}
	}
	lo, hi := (num-1)*size, min(num*size, len(items))
	out := page{Count: len(items), Results: append([]any{}, items[lo:hi]...)}
	pageURL := func(n int) *string {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		pq := r.URL.Query()
		if n == 1 {
			pq.Del("page")
		} else {
			pq.Set("page", strconv.Itoa(n))
		}
		u := url.URL{Scheme: scheme, Host: r.Host, RawPath: r.URL.EscapedPath(), Path: r.URL.Path, RawQuery: pq.Encode()}
		v := u.String()
		return &v
	}
	if num < pages {
		out.Next = pageURL(num + 1)
	}
	if num > 1 {
		out.Previous = pageURL(num - 1)
	}
	writeJSON(w, http.StatusOK, out)
}

// boolParam reads a django-filter BooleanFilter value: true/false/1/0
// (any case); anything else does not filter.
func boolParam(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// reply computes an answer under s.mu and writes it once s.mu is released;
// f must return values that share nothing with the stored state.
func (s *Simulator) reply(w http.ResponseWriter, f func() (int, any)) {
	s.mu.Lock()
	status, v := f()
	s.mu.Unlock()
	writeJSON(w, status, v)
}

func notFound() (int, any) { return http.StatusNotFound, map[string]string{"detail": msgNotFound} }

func invalid(errs map[string][]string) (int, any) { return http.StatusBadRequest, errs }

func (s *Simulator) handleListUsers(w http.ResponseWriter, r *http.Request, origin string) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("create_date__gte"); v != "" {
		t, ok := parseDateTime(v)
		if !ok {
			fieldErrors(w, map[string][]string{"create_date__gte": {msgInvalidDateTime}})
			return
		}
		since = t
	}
	registration := q.Get("registration")
	inactive, filterInactive := boolParam(q.Get("inactive"))
	active, filterActive := boolParam(q.Get("active"))
	s.mu.Lock()
	org := s.origins[origin]
	if org == nil {
		s.mu.Unlock()
		detail(w, http.StatusNotFound, msgNotFound)
		return
	}
	var items []any
	for _, u := range sortedUsers(org) {
		switch {
		case registration != "" && u.Registration != registration,
			filterInactive && u.Active == inactive,
			filterActive && u.Active != active,
			!since.IsZero() && u.CreateDate.Before(since):
			continue
		}
		items = append(items, u.wire())
	}
	s.mu.Unlock()
	s.paginate(w, r, items)
}

func (s *Simulator) handleGetUser(w http.ResponseWriter, origin, key string) {
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil || org.users[key] == nil {
			return notFound()
		}
		return http.StatusOK, org.users[key].wire()
	})
}

// applyUserFields sets the writable fields of in on u (email, first_name,
// last_name, registration, active, authorised_customers), collecting DRF
// validation errors into errs; other keys are ignored, as DRF ignores
// unknown and read-only fields (caller holds s.mu).
func applyUserFields(org *simOrigin, u *simUser, in map[string]any, errs map[string][]string) {
	str := func(k string, dst *string, allowBlank bool) {
		v, ok := in[k]
		if !ok {
			return
		}
		var s string
		switch x := v.(type) {
		case nil:
			errs[k] = append(errs[k], msgNull)
			return
		case string:
			s = x
		case json.Number:
			s = x.String()
		default:
			errs[k] = append(errs[k], msgNotString)
			return
		}
		if !allowBlank && strings.TrimSpace(s) == "" {
			errs[k] = append(errs[k], msgBlank)
			return
		}
		*dst = strings.TrimSpace(s)
	}
	str("email", &u.Email, false)
	if _, ok := in["email"]; ok && len(errs["email"]) == 0 && !plausibleEmail(u.Email) {
		errs["email"] = append(errs["email"], msgInvalidEmail)
	}
	str("first_name", &u.FirstName, true)
	str("last_name", &u.LastName, true)
	str("registration", &u.Registration, false)
	if v, ok := in["active"]; ok {
		if b, ok := drfBool(v); ok {
			u.Active = b
		} else {
			errs["active"] = append(errs["active"], msgNotBoolean)
		}
	}
	if v, ok := in["authorised_customers"]; ok {
		list, ok := v.([]any)
		if !ok {
			errs["authorised_customers"] = append(errs["authorised_customers"], "Expected a list of items but got type \""+pyType(v)+"\".")
			return
		}
		keys := make([]string, 0, len(list))
		for _, item := range list {
			k, ok := item.(string)
			if !ok {
				errs["authorised_customers"] = append(errs["authorised_customers"], "Incorrect type. Expected pk value, received "+pyType(item)+".")
				return
			}
			if org.customers[k] == nil {
				errs["authorised_customers"] = append(errs["authorised_customers"], "Invalid pk \""+printable(k, 64)+"\" - object does not exist.")
				return
			}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		u.AuthorisedCustomers = keys
	}
}

// drfBool reads a DRF BooleanField value.
func drfBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on", "y", "t":
			return true, true
		case "false", "0", "no", "off", "n", "f":
			return false, true
		}
	case json.Number:
		switch x.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	}
	return false, false
}

func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n") && strings.Contains(s[at+1:], ".")
}

// handleCreateUser is POST …/user/: a new user (registration "new" and
// inactive unless said otherwise); a key already used → 400.
func (s *Simulator) handleCreateUser(w http.ResponseWriter, r *http.Request, origin string) {
	in, ok := readObject(w, r)
	if !ok {
		return
	}
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil {
			return notFound()
		}
		errs := map[string][]string{}
		key := ""
		if v, ok := in["key"]; ok && v != nil {
			k, isStr := v.(string)
			switch {
			case isStr && (org.users[k] != nil || org.users[strings.ToLower(k)] != nil):
				errs["key"] = append(errs["key"], "user with this key already exists.")
			case !isStr || !isUUID(k):
				errs["key"] = append(errs["key"], "Must be a valid UUID.")
			default:
				key = strings.ToLower(k)
			}
		}
		if v, ok := in["email"]; !ok || v == nil {
			errs["email"] = append(errs["email"], msgRequired)
			in = without(in, "email")
		}
		u := &simUser{Key: key, Registration: "new", CreateDate: naiveUTC(s.now())}
		applyUserFields(org, u, in, errs)
		if len(errs) > 0 {
			return invalid(errs)
		}
		if u.Key == "" {
			u.Key = newUUID()
		}
		u.ID = s.nextUserID
		s.nextUserID++
		org.users[u.Key] = u
		return http.StatusCreated, u.wire()
	})
}

// without returns a copy of m without key k.
func without(m map[string]any, k string) map[string]any {
	out := make(map[string]any, len(m))
	for key, v := range m {
		if key != k {
			out[key] = v
		}
	}
	return out
}

// isUUID reports whether s is a UUID in its canonical text form (any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// handlePatchUser is PATCH …/user/{key}: only the fields present change. A
// body setting both "registration":"new" and "active":false sends the
// activation e-mail.
func (s *Simulator) handlePatchUser(w http.ResponseWriter, r *http.Request, origin, key string) {
	in, ok := readObject(w, r)
	if !ok {
		return
	}
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil || org.users[key] == nil {
			return notFound()
		}
		next := org.users[key].clone()
		errs := map[string][]string{}
		applyUserFields(org, next, in, errs)
		if len(errs) > 0 {
			return invalid(errs)
		}
		org.users[key] = next
		reg, isStr := in["registration"].(string)
		if act, isBool := drfBool(in["active"]); isStr && strings.TrimSpace(reg) == "new" && isBool && !act {
			s.activations[key]++
		}
		return http.StatusOK, next.wire()
	})
}

func (s *Simulator) handleProfile(w http.ResponseWriter, id int64) {
	s.reply(w, func() (int, any) {
		p := s.profiles[id]
		if p == nil {
			return notFound()
		}
		return http.StatusOK, deepCopy(p)
	})
}

func (s *Simulator) handleListCustomers(w http.ResponseWriter, r *http.Request, origin string) {
	s.mu.Lock()
	org := s.origins[origin]
	if org == nil {
		s.mu.Unlock()
		detail(w, http.StatusNotFound, msgNotFound)
		return
	}
	keys := make([]string, 0, len(org.customers))
	for k := range org.customers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := make([]any, 0, len(keys))
	for _, k := range keys {
		items = append(items, deepCopy(org.customers[k]))
	}
	s.mu.Unlock()
	s.paginate(w, r, items)
}

func (s *Simulator) handleGetCustomer(w http.ResponseWriter, origin, key string) {
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil || org.customers[key] == nil {
			return notFound()
		}
		return http.StatusOK, deepCopy(org.customers[key])
	})
}

// handleCreateCustomer is POST …/customer/: "key" is required; a key
// already used → 400.
func (s *Simulator) handleCreateCustomer(w http.ResponseWriter, r *http.Request, origin string) {
	in, ok := readObject(w, r)
	if !ok {
		return
	}
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil {
			return notFound()
		}
		v, present := in["key"]
		key, isStr := v.(string)
		switch {
		case !present:
			return invalid(map[string][]string{"key": {msgRequired}})
		case v == nil:
			return invalid(map[string][]string{"key": {msgNull}})
		case !isStr:
			return invalid(map[string][]string{"key": {msgNotString}})
		case strings.TrimSpace(key) == "":
			return invalid(map[string][]string{"key": {msgBlank}})
		case org.customers[key] != nil:
			return invalid(map[string][]string{"key": {"customer with this key already exists."}})
		}
		org.customers[key] = in
		return http.StatusCreated, deepCopy(in)
	})
}

// handlePutCustomer is PUT …/customer/{key}/: creates (201) or replaces
// (200) the customer; the key is the path's.
func (s *Simulator) handlePutCustomer(w http.ResponseWriter, r *http.Request, origin, key string) {
	in, ok := readObject(w, r)
	if !ok {
		return
	}
	in["key"] = key
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil {
			return notFound()
		}
		status := http.StatusOK
		if org.customers[key] == nil {
			status = http.StatusCreated
		}
		org.customers[key] = in
		return status, deepCopy(in)
	})
}

// handlePatchCustomer is PATCH …/customer/{key}/: only the fields present
// change (the key does not).
func (s *Simulator) handlePatchCustomer(w http.ResponseWriter, r *http.Request, origin, key string) {
	in, ok := readObject(w, r)
	if !ok {
		return
	}
	s.reply(w, func() (int, any) {
		org := s.origins[origin]
		if org == nil || org.customers[key] == nil {
			return notFound()
		}
		c := org.customers[key]
		for k, v := range in {
			if k != "key" {
				c[k] = v
			}
		}
		return http.StatusOK, deepCopy(c)
	})
}
