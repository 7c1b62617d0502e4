package marta

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiHandler routes the Customer API.
func (s *Simulator) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth", s.handleAuth)
	mux.HandleFunc("POST /auth/refreshToken", s.handleRefresh)
	mux.HandleFunc("GET /customer/checkcard", s.handleCheckCard)
	mux.HandleFunc("POST /customer/verifyemail", s.handleVerifyEmail)
	mux.HandleFunc("PUT /customer/registrationVCWithVerificationCode", s.handleRegister)
	mux.HandleFunc("POST /customer/generateverificationcode", s.handleGenerateCode)
	mux.HandleFunc("PUT /customer/changeUAPByVerificationCode", s.handleChangeUAP)
	mux.HandleFunc("GET /customer/customerdatafields/{campaignid}", s.handleDataFields)
	mux.HandleFunc("GET /customer", s.handleGetCustomer)
	mux.HandleFunc("PUT /customer", s.handleUpdateCustomer)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	})
	return mux
}

// answerStatus is the HTTP status the simulator gives an AnswerCode.
func answerStatus(code string) int {
	switch code {
	case CodeCustomerInactive:
		return http.StatusPaymentRequired
	case CodeCustomerNotFound:
		return http.StatusNotFound
	case CodeInvalidCredentials, CodeSessionExpired:
		return http.StatusUnauthorized
	case CodeOperationNotAllowed:
		return http.StatusForbidden
	case CodeUnknownError, CodeSQLError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// fail answers an AnswerCode with its usual status; field, if not empty,
// names the field at fault.
func fail(w http.ResponseWriter, code, field string) {
	failStatus(w, answerStatus(code), code, field)
}

func failStatus(w http.ResponseWriter, status int, code, field string) {
	n, _ := strconv.Atoi(code)
	body := map[string]any{"AnswerCode": n, "Message": answerMessages[code]}
	if field != "" {
		body["Field"] = field
	}
	writeJSON(w, status, body)
}

// ok answers 200 with AnswerCode 0 and the members of v.
func ok(w http.ResponseWriter, v map[string]any) {
	if v == nil {
		v = map[string]any{}
	}
	v["AnswerCode"] = 0
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON object body into v; it answers 996 and returns false
// when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(v); err != nil {
		fail(w, CodeInvalidInput, "")
		return false
	}
	return true
}

// apiKeyOK checks x-api-key, answering 401 AnswerCode 79 when it is missing
// or wrong.
func (s *Simulator) apiKeyOK(w http.ResponseWriter, r *http.Request) bool {
	k := r.Header.Get("x-api-key")
	if k == "" || s.apiKey == "" || subtle.ConstantTimeCompare([]byte(k), []byte(s.apiKey)) != 1 {
		failStatus(w, http.StatusUnauthorized, CodeOperationNotAllowed, "")
		return false
	}
	return true
}

// authorize checks the bearer token and its scope. A missing, unknown or
// expired token is 401 AnswerCode 998; a token of another scope 403
// AnswerCode 79.
func (s *Simulator) authorize(w http.ResponseWriter, r *http.Request, scope string) (simToken, bool) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	t := s.tokens[tok]
	var tv simToken
	if t != nil {
		tv = *t
	}
	s.mu.Unlock()
	switch {
	case t == nil || !s.now().Before(tv.expires):
		fail(w, CodeSessionExpired, "")
		return simToken{}, false
	case tv.scope != scope:
		fail(w, CodeOperationNotAllowed, "")
		return simToken{}, false
	}
	return tv, true
}

// flex reads a JSON string or number (devicetype, customerid, campaignid).
type flex = flexString

func validDevice(d flex) bool { return d == "1" || d == "2" || d == "3" }

func (s *Simulator) handleAuth(w http.ResponseWriter, r *http.Request) {
	if !s.apiKeyOK(w, r) {
		return
	}
	var in struct {
		Username   string `json:"username"`
		Password   string `json:"password"`
		CampaignID flex   `json:"campaignid"`
		DeviceType flex   `json:"devicetype"`
		Scope      string `json:"scope"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Scope == ScopeCustomer || in.Scope == ScopeCustomerSynchro {
		recOf(r).Scope = in.Scope
	}
	campaign := string(in.CampaignID)
	switch {
	case in.Scope != ScopeCustomer && in.Scope != ScopeCustomerSynchro:
		fail(w, CodeInvalidInput, "scope")
		return
	case s.campaigns[campaign] == nil:
		fail(w, CodeInvalidInput, "campaignid")
		return
	case !validDevice(in.DeviceType):
		fail(w, CodeInvalidInput, "devicetype")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cust *SimCustomer
	if in.Scope == ScopeCustomer {
		cust = s.byUsername(in.Username)
		if cust == nil || cust.CampaignID != campaign || cust.Password == "" ||
			subtle.ConstantTimeCompare([]byte(cust.Password), []byte(in.Password)) != 1 {
			fail(w, CodeInvalidCredentials, "")
			return
		}
	}
	id := ""
	if cust != nil {
		id = cust.CustomerID
	}
	jwt, refresh := s.issue(in.Scope, campaign, id, "")
	out := map[string]any{"token": jwt, "refreshToken": refresh,
		"expiresIn": s.jwtTTL.Seconds(), "refreshTokenExpiresIn": s.refreshTTL.Seconds()}
	if cust != nil {
		out["customer"] = customerJSON(cust)
	}
	ok(w, out)
}

func (s *Simulator) handleRefresh(w http.ResponseWriter, r *http.Request) {
	if !s.apiKeyOK(w, r) {
		return
	}
	var in struct {
		RefreshToken string `json:"refreshToken"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.refreshes[in.RefreshToken]
	if t == nil || !s.now().Before(t.expires) {
		fail(w, CodeSessionExpired, "")
		return
	}
	recOf(r).Scope = t.scope
	jwt, refresh := s.issue(t.scope, t.campaign, t.customerID, in.RefreshToken)
	ok(w, map[string]any{"token": jwt, "refreshToken": refresh, "expiresIn": s.jwtTTL.Seconds(),
		"refreshTokenExpiresIn": max(t.expires.Sub(s.now()), 0).Seconds()})
}

func (s *Simulator) handleCheckCard(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomerSynchro)
	if !authorized {
		return
	}
	q := r.URL.Query()
	card, email, mobile := strings.TrimSpace(q.Get("card")), q.Get("email"), q.Get("mobile")
	if card == "" && strings.TrimSpace(email) == "" && strings.TrimSpace(mobile) == "" {
		fail(w, CodeInvalidInput, "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *SimCustomer
	for _, x := range s.customers {
		if x.CampaignID != t.campaign {
			continue
		}
		if (card != "" && x.Card == card) ||
			(strings.TrimSpace(email) != "" && strings.EqualFold(x.Email, strings.TrimSpace(email))) ||
			(normalizeMobile(mobile) != "" && x.Mobile == normalizeMobile(mobile)) {
			c = x
			break
		}
	}
	if c == nil {
		fail(w, CodeCustomerInactive, "") // 402: a new user
		return
	}
	ok(w, map[string]any{"registered_customer": c.Password != "", "customerid": c.CustomerID})
}

func (s *Simulator) handleVerifyEmail(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomerSynchro)
	if !authorized {
		return
	}
	var in struct {
		CampaignID flex   `json:"campaignid"`
		Emails     string `json:"emails"`
		Email      string `json:"email"`
		Mobile     string `json:"mobile"`
		DeviceType flex   `json:"devicetype"`
	}
	if !decode(w, r, &in) {
		return
	}
	campaign := firstNonEmpty(string(in.CampaignID), t.campaign)
	email := strings.TrimSpace(firstNonEmpty(in.Emails, in.Email))
	switch {
	case s.campaigns[campaign] == nil:
		fail(w, CodeInvalidInput, "campaignid")
		return
	case in.DeviceType != "" && !validDevice(in.DeviceType):
		fail(w, CodeInvalidInput, "devicetype")
		return
	case email == "" && normalizeMobile(in.Mobile) == "":
		fail(w, CodeInvalidInput, "emails")
		return
	case email != "" && !validEmail(email):
		fail(w, CodeInvalidEmail, "emails")
		return
	}
	to := contactKey(firstNonEmpty(email, in.Mobile))
	s.mu.Lock()
	s.sendCode(regKey(campaign, to), to, PurposeRegistration)
	s.mu.Unlock()
	ok(w, nil)
}

func regKey(campaign, to string) string { return PurposeRegistration + "\x00" + campaign + "\x00" + to }
func credKey(customerID string) string  { return PurposeCredentials + "\x00" + customerID }

func validEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at > 0 && at < len(e)-1 && !strings.ContainsAny(e, " \t\r\n")
}

// codeMatches compares a given code with the pending one in constant time.
func codeMatches(pending, given string) bool {
	return pending != "" && subtle.ConstantTimeCompare([]byte(pending), []byte(strings.TrimSpace(given))) == 1
}

func (s *Simulator) handleRegister(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomerSynchro)
	if !authorized {
		return
	}
	var in struct {
		VerificationCode flex   `json:"verificationcode"`
		Password         string `json:"password"`
		Passwords        string `json:"passwords"` // the seed's spelling
		DeviceType       flex   `json:"devicetype"`
		CampaignID       flex   `json:"campaignid"`
		CategoryID       flex   `json:"categoryID"`
		Username         string `json:"username"`
		Mail             string `json:"mailcontactdata"`
		Mobile           string `json:"mobilecontactdata"`
	}
	if !decode(w, r, &in) {
		return
	}
	campaign := firstNonEmpty(string(in.CampaignID), t.campaign)
	password := firstNonEmpty(in.Password, in.Passwords)
	mail, mobile := strings.TrimSpace(in.Mail), normalizeMobile(in.Mobile)
	username := strings.TrimSpace(in.Username)
	if s.campaigns[campaign] == nil {
		fail(w, CodeInvalidInput, "campaignid")
		return
	}
	if mail == "" && mobile == "" {
		fail(w, CodeInvalidInput, "mailcontactdata")
		return
	}
	to := contactKey(firstNonEmpty(mail, mobile))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !codeMatches(s.pending[regKey(campaign, to)], string(in.VerificationCode)):
		fail(w, CodeWrongVerificationCode, "")
	case username == "":
		fail(w, CodeInvalidUsername, "username")
	case len(password) < minPassword:
		fail(w, CodeInvalidPassword, "password")
	case mail != "" && !validEmail(mail):
		fail(w, CodeInvalidEmail, "mailcontactdata")
	case s.byUsername(username) != nil:
		fail(w, CodeUsernameTaken, "username")
	case mail != "" && s.byContact(campaign, mail, "") != nil:
		fail(w, CodeEmailTaken, "mailcontactdata")
	case mobile != "" && s.byContact(campaign, "", mobile) != nil:
		fail(w, CodeCustomerExists, "mobilecontactdata")
	default:
		delete(s.pending, regKey(campaign, to))
		c := s.addCustomer(SimCustomer{CampaignID: campaign, Email: mail, Mobile: mobile, Username: username, Password: password})
		if in.CategoryID != "" {
			c.Fields["category"] = string(in.CategoryID)
		}
		ok(w, accountJSON(c))
	}
}

func (s *Simulator) handleGenerateCode(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomerSynchro)
	if !authorized {
		return
	}
	var in struct {
		CustomerID flex   `json:"customerid"`
		Emails     string `json:"emails"`
		Email      string `json:"email"`
		Mobile     string `json:"mobile"`
		DeviceType flex   `json:"devicetype"`
	}
	if !decode(w, r, &in) {
		return
	}
	email, mobile := strings.TrimSpace(firstNonEmpty(in.Emails, in.Email)), normalizeMobile(in.Mobile)
	if in.DeviceType != "" && !validDevice(in.DeviceType) {
		fail(w, CodeInvalidInput, "devicetype")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[string(in.CustomerID)]
	switch {
	case c == nil || c.CampaignID != t.campaign:
		fail(w, CodeCustomerNotFound, "")
	case email == "" && mobile == "":
		fail(w, CodeInvalidInput, "emails")
	case email != "" && c.Email != "" && !strings.EqualFold(email, c.Email):
		fail(w, CodeInvalidInput, "emails") // not the customer's address
	case email == "" && c.Mobile != "" && mobile != c.Mobile:
		fail(w, CodeInvalidInput, "mobile")
	default:
		to := contactKey(firstNonEmpty(email, mobile))
		s.sendCode(credKey(c.CustomerID), to, PurposeCredentials)
		ok(w, nil)
	}
}

func (s *Simulator) handleChangeUAP(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomerSynchro)
	if !authorized {
		return
	}
	var in struct {
		CustomerID       flex   `json:"customerid"`
		Username         string `json:"username"`
		Password         string `json:"password"`
		Passwords        string `json:"passwords"`
		VerificationCode flex   `json:"verificationcode"`
	}
	if !decode(w, r, &in) {
		return
	}
	username, password := strings.TrimSpace(in.Username), firstNonEmpty(in.Password, in.Passwords)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[string(in.CustomerID)]
	switch {
	case c == nil || c.CampaignID != t.campaign:
		fail(w, CodeCustomerNotFound, "")
	case !codeMatches(s.pending[credKey(c.CustomerID)], string(in.VerificationCode)):
		fail(w, CodeWrongVerificationCode, "")
	case username == "":
		fail(w, CodeInvalidUsername, "username")
	case len(password) < minPassword:
		fail(w, CodeInvalidPassword, "password")
	case func() bool { o := s.byUsername(username); return o != nil && o != c }():
		fail(w, CodeUsernameTaken, "username")
	default:
		delete(s.pending, credKey(c.CustomerID))
		c.Username, c.Password = username, password
		ok(w, accountJSON(c))
	}
}

func (s *Simulator) handleDataFields(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomer)
	if !authorized {
		return
	}
	camp := s.campaigns[r.PathValue("campaignid")]
	if camp == nil {
		fail(w, CodeInvalidInput, "campaignid")
		return
	}
	if camp.ID != t.campaign {
		fail(w, CodeOperationNotAllowed, "")
		return
	}
	custom, privacy := []map[string]any{}, []map[string]any{}
	for _, f := range camp.Fields {
		m := map[string]any{"name": f.Name, "visible": f.Visible, "mandatory": f.Mandatory}
		if f.Privacy {
			privacy = append(privacy, m)
		} else {
			custom = append(custom, m)
		}
	}
	ok(w, map[string]any{"CustomDataFields": custom, "PrivacyCustomDataFields": privacy})
}

func (s *Simulator) handleGetCustomer(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomer)
	if !authorized {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[t.customerID]
	if c == nil {
		fail(w, CodeCustomerNotFound, "")
		return
	}
	ok(w, customerJSON(c))
}

func (s *Simulator) handleUpdateCustomer(w http.ResponseWriter, r *http.Request) {
	t, authorized := s.authorize(w, r, ScopeCustomer)
	if !authorized {
		return
	}
	var in map[string]any
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[t.customerID]
	if c == nil {
		fail(w, CodeCustomerNotFound, "")
		return
	}
	camp := s.campaigns[c.CampaignID]
	privacyField := map[string]bool{"usedforpromotions": true, "usedforstatistics": true, "usedbyothers": true}
	if camp != nil {
		for _, f := range camp.Fields {
			if f.Privacy {
				privacyField[strings.ToLower(f.Name)] = true
			}
		}
	}
	// Apply to a copy; commit only if every check passes.
	n := view(c)
	n.Password = c.Password
	for k, v := range in {
		lk := strings.ToLower(k)
		str, isStr := v.(string)
		switch {
		case staticFields[lk] && v != nil && !isStr:
			fail(w, CodeInvalidInput, lk)
			return
		case lk == "name":
			n.Name = strings.TrimSpace(str)
		case lk == "surname":
			n.Surname = strings.TrimSpace(str)
		case lk == "gender":
			g := strings.ToUpper(strings.TrimSpace(str))
			if g != "" && g != "M" && g != "F" && g != "N" {
				fail(w, CodeInvalidInput, "gender")
				return
			}
			n.Gender = g
		case lk == "birthdate":
			b := strings.TrimSpace(str)
			if b != "" && !validDate(b) {
				fail(w, CodeInvalidInput, "birthdate")
				return
			}
			n.Birthdate = b
		case lk == "mailcontactdata":
			m := strings.TrimSpace(str)
			if m != "" && !validEmail(m) {
				fail(w, CodeInvalidEmail, "mailcontactdata")
				return
			}
			if o := s.byContact(c.CampaignID, m, ""); m != "" && o != nil && o != c {
				fail(w, CodeEmailTaken, "mailcontactdata")
				return
			}
			n.Email = m
		case lk == "mobilecontactdata":
			n.Mobile = normalizeMobile(str)
		case privacyField[lk]:
			b, valid := consent(v)
			if !valid {
				fail(w, CodeInvalidInput, lk)
				return
			}
			n.Privacy[lk] = b
		case lk == "answercode" || lk == "customerid" || lk == "card" || lk == "fidelycode" || lk == "username" || lk == "password":
			// read-only here
		default:
			if v == nil {
				delete(n.Fields, k)
			} else {
				n.Fields[k] = v
			}
		}
	}
	if camp != nil {
		for _, f := range camp.Fields {
			if f.Mandatory && !hasValue(&n, strings.ToLower(f.Name), f.Privacy) {
				if staticFields[strings.ToLower(f.Name)] {
					fail(w, CodeStaticFieldMandatory, f.Name)
				} else {
					fail(w, CodeDynamicFieldMandatory, f.Name)
				}
				return
			}
		}
	}
	*c = n
	c.Registered = false
	ok(w, nil)
}

// hasValue reports whether c has a value for field.
func hasValue(c *SimCustomer, field string, privacy bool) bool {
	if privacy {
		_, set := c.Privacy[field]
		return set
	}
	switch field {
	case "name":
		return c.Name != ""
	case "surname":
		return c.Surname != ""
	case "gender":
		return c.Gender != ""
	case "birthdate":
		return c.Birthdate != ""
	case "mailcontactdata":
		return c.Email != ""
	case "mobilecontactdata":
		return c.Mobile != ""
	}
	for k, v := range c.Fields {
		if strings.EqualFold(k, field) && v != nil && v != "" {
			return true
		}
	}
	return false
}

// consent reads a consent: a boolean, or "true"/"false".
func consent(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}

func validDate(d string) bool {
	_, err := time.Parse(time.DateOnly, d)
	return err == nil
}

// byUsername finds a registered customer by username, any letter case
// (caller holds s.mu).
func (s *Simulator) byUsername(u string) *SimCustomer {
	if u = strings.TrimSpace(u); u == "" {
		return nil
	}
	for _, c := range s.customers {
		if c.Username != "" && strings.EqualFold(c.Username, u) {
			return c
		}
	}
	return nil
}

// byContact finds a customer of the campaign by e-mail (any letter case) or
// mobile (caller holds s.mu).
func (s *Simulator) byContact(campaign, email, mobile string) *SimCustomer {
	for _, c := range s.customers {
		if c.CampaignID != campaign {
			continue
		}
		if (email != "" && strings.EqualFold(c.Email, email)) || (mobile != "" && c.Mobile == mobile) {
			return c
		}
	}
	return nil
}

// accountJSON is the account info of a registration or credentials change.
func accountJSON(c *SimCustomer) map[string]any {
	return map[string]any{"customerid": c.CustomerID, "card": c.Card, "fidelyCode": c.FidelyCode, "username": c.Username}
}

// customerJSON is GET /customer's answer: the legacy model's members, the
// consents under "privacy", the custom fields at the top level.
func customerJSON(c *SimCustomer) map[string]any {
	out := map[string]any{}
	for k, v := range c.Fields {
		out[k] = v
	}
	privacy := map[string]bool{}
	for k, v := range c.Privacy {
		privacy[k] = v
	}
	for k, v := range map[string]any{
		"customerid": c.CustomerID, "card": c.Card, "FidelyCode": c.FidelyCode, "status": "active",
		"name": c.Name, "surname": c.Surname, "gender": c.Gender, "birthdate": c.Birthdate,
		"userName": c.Username, "mailContactData": c.Email, "mobileContactData": c.Mobile,
		"privacy": privacy, "balance_points": 0,
	} {
		out[k] = v
	}
	return out
}
