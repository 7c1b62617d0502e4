package marta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// The contract: the client run against the simulator over HTTP, for every
// behaviour the sign-up flows rely on.

var demo = Session{CampaignID: DemoCampaignID, DeviceType: DeviceBrowser}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	sim    *Simulator
	srv    *httptest.Server
	client *Client
}

func newHarness(t *testing.T, edit func(*SimConfig), opts ...Option) *harness {
	t.Helper()
	cfg := DefaultSimConfig()
	if edit != nil {
		edit(&cfg)
	}
	sim := NewSimulator(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{BaseURL: srv.URL, APIKey: secret.New(DemoAPIKey)}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{sim: sim, srv: srv, client: c}
}

// vendorError asserts err is a MARTA *vendors.Error of kind and code.
func vendorError(t *testing.T, err error, kind vendors.Kind, code string) *vendors.Error {
	t.Helper()
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *vendors.Error", err)
	}
	if ve.Vendor != Vendor || ve.Kind != kind || (code != "" && ve.Code != code) {
		t.Fatalf("err = %+v, want %v %q", ve, kind, code)
	}
	return ve
}

func (h *harness) code(t *testing.T, to string) secret.String {
	t.Helper()
	c, ok := h.sim.LastCode(to)
	if !ok || len(c) != 6 {
		t.Fatalf("no 6-digit code sent to %s (got %q)", to, c)
	}
	return secret.New(c)
}

func TestCheckCardBranches(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name                string
		card, email, mobile string
		want                CheckResult
	}{
		{"new by email", "", "nobody@example.com", "", CheckResult{Branch: BranchNew}},
		{"new by mobile", "", "", "+39 333 000 0000", CheckResult{Branch: BranchNew}},
		{"has card by email", "", "Card.Holder@example.com", "", CheckResult{Branch: BranchHasCard, CustomerID: DemoCardHolderID}},
		{"has card by card number", DemoCardHolderCard, "", "", CheckResult{Branch: BranchHasCard, CustomerID: DemoCardHolderID}},
		{"has card by mobile", "", "", "+39 333 1234567", CheckResult{Branch: BranchHasCard, CustomerID: DemoCardHolderID}},
		{"registered", "", DemoRegisteredEmail, "", CheckResult{Branch: BranchRegistered, CustomerID: DemoRegisteredID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.client.CheckCard(t.Context(), demo, tt.card, tt.email, tt.mobile)
			if err != nil || got != tt.want {
				t.Fatalf("CheckCard = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	_, err := h.client.CheckCard(t.Context(), demo, "", "", "")
	vendorError(t, err, vendors.Permanent, CodeInvalidArgument)
	_, err = h.client.CheckCard(t.Context(), Session{CampaignID: DemoCampaignID, DeviceType: 7}, "", "x@example.com", "")
	vendorError(t, err, vendors.Permanent, CodeInvalidArgument)
}

func TestNewUserFlow(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	const email = "new.person@example.com"
	if err := h.client.VerifyEmail(ctx, demo, email, ""); err != nil {
		t.Fatal(err)
	}
	code := h.code(t, email)
	reg := Registration{VerificationCode: secret.New("000000"), Password: secret.New("s3cret-pass"), CategoryID: "7", Username: email, Email: email}
	if code.Reveal() == "000000" {
		reg.VerificationCode = secret.New("111111")
	}
	_, err := h.client.RegisterWithCode(ctx, demo, reg)
	if ve := vendorError(t, err, vendors.Permanent, CodeWrongVerificationCode); !IsWrongCode(err) || ve.Status != http.StatusBadRequest {
		t.Fatalf("wrong code: %+v", ve)
	}
	reg.VerificationCode = code
	acct, err := h.client.RegisterWithCode(ctx, demo, reg)
	if err != nil {
		t.Fatal(err)
	}
	if acct.CustomerID == "" || acct.Card == "" || len(acct.FidelyCode) != 14 || acct.Username != email {
		t.Fatalf("account = %+v", acct)
	}
	// The code is spent.
	if _, err := h.client.RegisterWithCode(ctx, demo, reg); !IsWrongCode(err) {
		t.Fatalf("reused code: %v", err)
	}
	if got, err := h.client.CheckCard(ctx, demo, "", email, ""); err != nil || got.Branch != BranchRegistered || got.CustomerID != acct.CustomerID {
		t.Fatalf("CheckCard after registration = %+v, %v", got, err)
	}

	// Data entry.
	fields, err := h.client.DataFields(ctx, demo, email, reg.Password)
	if err != nil {
		t.Fatal(err)
	}
	mandatory := map[string]bool{}
	for _, f := range fields {
		if f.Mandatory {
			mandatory[f.Name] = f.Privacy
		}
	}
	if len(mandatory) != 5 || !mandatory["usedforpromotions"] || mandatory["birthdate"] {
		t.Fatalf("fields = %+v", fields)
	}
	full := map[string]any{"name": "Ada", "surname": "Lovelace", "gender": "F", "birthdate": "1990-12-10", "usedforpromotions": false, "favouriteStore": "Milano"}
	without := func(k string) map[string]any {
		m := map[string]any{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	for _, tc := range []struct{ drop, code string }{{"birthdate", CodeStaticFieldMandatory}, {"usedforpromotions", CodeDynamicFieldMandatory}} {
		err := h.client.UpdateCustomer(ctx, demo, email, reg.Password, without(tc.drop))
		ve := vendorError(t, err, vendors.Permanent, tc.code)
		if !IsMandatoryField(err) || len(ve.Fields) != 1 || ve.Fields[0].Field != tc.drop {
			t.Fatalf("without %s: %+v", tc.drop, ve)
		}
	}
	if err := h.client.UpdateCustomer(ctx, demo, email, reg.Password, full); err != nil {
		t.Fatal(err)
	}
	cu, err := h.client.Customer(ctx, demo, email, reg.Password)
	if err != nil {
		t.Fatal(err)
	}
	if cu.CustomerID != acct.CustomerID || cu.Card != acct.Card || cu.FidelyCode != acct.FidelyCode || cu.Name != "Ada" ||
		cu.Birthdate != "1990-12-10" || cu.Mail != email || cu.UserName != email || cu.Privacy["usedforpromotions"] ||
		cu.Fields["favouriteStore"] != "Milano" {
		t.Fatalf("customer = %+v", cu)
	}
	// A later partial update keeps what is stored.
	if err := h.client.UpdateCustomer(ctx, demo, email, reg.Password, map[string]any{"usedforpromotions": true}); err != nil {
		t.Fatal(err)
	}
	// A wrong password is refused, even with a session of the right one cached.
	_, err = h.client.Customer(ctx, demo, email, secret.New("not-the-password"))
	vendorError(t, err, vendors.Permanent, CodeInvalidCredentials)
}

func TestRegistrationRefusals(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	register := func(username, email string) error {
		t.Helper()
		if err := h.client.VerifyEmail(ctx, demo, email, ""); err != nil {
			t.Fatal(err)
		}
		_, err := h.client.RegisterWithCode(ctx, demo, Registration{VerificationCode: h.code(t, email),
			Password: secret.New("s3cret-pass"), Username: username, Email: email})
		return err
	}
	err := register(DemoRegisteredEmail, "other@example.com")
	if vendorError(t, err, vendors.Permanent, CodeUsernameTaken); !IsUsernameTaken(err) {
		t.Fatal("IsUsernameTaken")
	}
	err = register("fresh-username", DemoCardHolderEmail)
	if vendorError(t, err, vendors.Permanent, CodeEmailTaken); !IsEmailTaken(err) {
		t.Fatal("IsEmailTaken")
	}
	// By mobile.
	const mobile = "+393470000001"
	if err := h.client.VerifyEmail(ctx, demo, "", mobile); err != nil {
		t.Fatal(err)
	}
	acct, err := h.client.RegisterWithCode(ctx, demo, Registration{VerificationCode: h.code(t, mobile),
		Password: secret.New("s3cret-pass"), Username: mobile, Mobile: mobile})
	if err != nil || acct.Username != mobile {
		t.Fatalf("by mobile: %+v, %v", acct, err)
	}
	err = h.client.VerifyEmail(ctx, demo, "not-an-email", "")
	vendorError(t, err, vendors.Permanent, CodeInvalidEmail)
}

func TestHasCardFlow(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	res, err := h.client.CheckCard(ctx, demo, "", DemoCardHolderEmail, "")
	if err != nil || res.Branch != BranchHasCard {
		t.Fatalf("CheckCard = %+v, %v", res, err)
	}
	if err := h.client.GenerateVerificationCode(ctx, demo, res.CustomerID, DemoCardHolderEmail, ""); err != nil {
		t.Fatal(err)
	}
	code := h.code(t, DemoCardHolderEmail)
	pw := secret.New("card-holder-pw")
	wrong := secret.New("999999")
	if code.Reveal() == "999999" {
		wrong = secret.New("888888")
	}
	_, err = h.client.ChangeCredentialsWithCode(ctx, demo, res.CustomerID, DemoCardHolderEmail, pw, wrong)
	vendorError(t, err, vendors.Permanent, CodeWrongVerificationCode)
	_, err = h.client.ChangeCredentialsWithCode(ctx, demo, res.CustomerID, DemoRegisteredEmail, pw, code)
	vendorError(t, err, vendors.Permanent, CodeUsernameTaken)
	acct, err := h.client.ChangeCredentialsWithCode(ctx, demo, res.CustomerID, DemoCardHolderEmail, pw, code)
	if err != nil {
		t.Fatal(err)
	}
	if acct.CustomerID != DemoCardHolderID || acct.Card != DemoCardHolderCard || len(acct.FidelyCode) != 14 {
		t.Fatalf("account = %+v", acct)
	}
	if res, err := h.client.CheckCard(ctx, demo, DemoCardHolderCard, "", ""); err != nil || res.Branch != BranchRegistered {
		t.Fatalf("CheckCard after = %+v, %v", res, err)
	}
	cu, err := h.client.Customer(ctx, demo, DemoCardHolderEmail, pw)
	if err != nil || cu.Card != DemoCardHolderCard || cu.Name != "Carla" {
		t.Fatalf("Customer = %+v, %v", cu, err)
	}
	err = h.client.GenerateVerificationCode(ctx, demo, "424242", DemoCardHolderEmail, "")
	vendorError(t, err, vendors.Permanent, CodeCustomerNotFound)
	err = h.client.GenerateVerificationCode(ctx, demo, DemoCardHolderID, "someone.else@example.com", "")
	vendorError(t, err, vendors.Permanent, CodeInvalidInput)
}

// rawAuth gets a token from the simulator directly.
func rawAuth(t *testing.T, h *harness, body string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.srv.URL+"/auth", strings.NewReader(body))
	req.Header.Set("x-api-key", DemoAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Token == "" {
		t.Fatalf("auth: %d %v", resp.StatusCode, err)
	}
	return r.Token
}

func TestScopeRefusal(t *testing.T) {
	h := newHarness(t, nil)
	synchro := rawAuth(t, h, `{"campaignid":"1001","devicetype":"1","scope":"customersynchro"}`)
	customer := rawAuth(t, h, `{"campaignid":"1001","devicetype":"1","scope":"customer","username":"registered@example.com","password":"demo-password-1"}`)
	tests := []struct {
		name, method, path, token string
	}{
		{"synchro on GET /customer", "GET", "/customer", synchro},
		{"synchro on PUT /customer", "PUT", "/customer", synchro},
		{"synchro on datafields", "GET", "/customer/customerdatafields/1001", synchro},
		{"customer on checkcard", "GET", "/customer/checkcard?email=x@example.com", customer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, h.srv.URL+tt.path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			ve := vendorError(t, CheckResponse(resp), vendors.Permanent, CodeOperationNotAllowed)
			if ve.Status != http.StatusForbidden {
				t.Fatalf("status = %d", ve.Status)
			}
		})
	}
	if got := h.sim.Requests(); got[len(got)-1].Scope != ScopeCustomer {
		t.Fatalf("request log scope = %q", got[len(got)-1].Scope)
	}
}

func TestMissingOrWrongAPIKey(t *testing.T) {
	h := newHarness(t, nil)
	c, err := NewClient(Config{BaseURL: h.srv.URL, APIKey: secret.New("wrong-key")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CheckCard(t.Context(), demo, "", "x@example.com", "")
	ve := vendorError(t, err, vendors.Permanent, CodeOperationNotAllowed)
	if ve.Status != http.StatusUnauthorized || ve.Op != OpAuth || strings.Contains(ve.Error(), "wrong-key") {
		t.Fatalf("err = %+v", ve)
	}
	resp, err := http.Post(h.srv.URL+"/auth", "application/json", strings.NewReader(`{"campaignid":"1001","devicetype":"1","scope":"customersynchro"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	vendorError(t, CheckResponse(resp), vendors.Permanent, CodeOperationNotAllowed)

	if _, err := NewClient(Config{BaseURL: h.srv.URL}); err == nil || !strings.Contains(err.Error(), "apiKey") {
		t.Fatalf("Validate without apiKey = %v", err)
	}
	if _, err := NewClient(Config{BaseURL: "ftp://x", APIKey: secret.New("k")}); err == nil || !strings.Contains(err.Error(), "baseURL") {
		t.Fatalf("Validate with a bad baseURL = %v", err)
	}
}

func TestJWTExpiryReauthenticates(t *testing.T) {
	simClock, clientClock := newFakeClock(), newFakeClock()
	h := newHarness(t, func(c *SimConfig) { c.Clock = simClock.Now }, WithClock(clientClock.Now))
	ctx := t.Context()
	check := func() {
		t.Helper()
		if res, err := h.client.CheckCard(ctx, demo, "", DemoRegisteredEmail, ""); err != nil || res.Branch != BranchRegistered {
			t.Fatalf("CheckCard = %+v, %v", res, err)
		}
	}
	check()
	// The client's clock lags: it sends a JWT the vendor deems expired.
	simClock.Advance(16 * time.Minute)
	check()
	if n := h.sim.CountRequests("POST", "/auth/refreshToken"); n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
	// Beyond the refresh token's life: the refresh fails, a new /auth follows.
	simClock.Advance(61 * time.Minute)
	check()
	if n := h.sim.CountRequests("POST", "/auth"); n != 2 {
		t.Fatalf("auths = %d, want 2", n)
	}
	expired := 0
	for _, r := range h.sim.Requests() {
		if r.Path == "/customer/checkcard" && r.Status == http.StatusUnauthorized {
			expired++
		}
	}
	if expired != 2 {
		t.Fatalf("checkcard 401s = %d, want 2", expired)
	}
}

func TestJWTShortTTLRefreshes(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, func(c *SimConfig) { c.Clock = clock.Now; c.JWTTTL = time.Minute; c.RefreshTTL = 5 * time.Minute },
		WithClock(clock.Now))
	ctx := t.Context()
	for range 3 {
		if _, err := h.client.CheckCard(ctx, demo, "", "x@example.com", ""); err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Second) // past the renewal point (45 s) of a 1-minute JWT
	}
	if a, r := h.sim.CountRequests("POST", "/auth"), h.sim.CountRequests("POST", "/auth/refreshToken"); a != 1 || r != 2 {
		t.Fatalf("auth = %d, refresh = %d; want 1, 2", a, r)
	}
	clock.Advance(5 * time.Minute) // the refresh token is spent: a new /auth
	if _, err := h.client.CheckCard(ctx, demo, "", "x@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if a := h.sim.CountRequests("POST", "/auth"); a != 2 {
		t.Fatalf("auth = %d, want 2", a)
	}
	for _, r := range h.sim.Requests() {
		if r.Status == http.StatusUnauthorized {
			t.Fatalf("an expired token was sent: %+v", r)
		}
	}
}

func TestPersistentSessionExpiryIsTransient(t *testing.T) {
	h := newHarness(t, nil)
	// A proxy in front of the simulator that answers every API call 998.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth") {
			h.sim.ServeHTTP(w, r)
			return
		}
		failStatus(w, http.StatusUnauthorized, CodeSessionExpired, "")
	}))
	t.Cleanup(proxy.Close)
	c, err := NewClient(Config{BaseURL: proxy.URL, APIKey: secret.New(DemoAPIKey)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CheckCard(t.Context(), demo, "", "x@example.com", "")
	vendorError(t, err, vendors.Transient, CodeSessionExpired)
}

func TestFaults(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	if _, err := h.client.CheckCard(ctx, demo, "", "x@example.com", ""); err != nil {
		t.Fatal(err)
	}
	h.sim.Faults().FailNext(1, http.StatusServiceUnavailable)
	_, err := h.client.CheckCard(ctx, demo, "", "x@example.com", "")
	if ve := vendorError(t, err, vendors.Transient, CodeServerError); ve.Op != OpCheckCard || !vendors.IsRetryable(err) {
		t.Fatalf("503: %+v", ve)
	}
	h.sim.Faults().FailNext(1, http.StatusTooManyRequests)
	err = h.client.VerifyEmail(ctx, demo, "x@example.com", "")
	if ve := vendorError(t, err, vendors.RateLimited, CodeRateLimited); ve.RetryAfter != time.Second {
		t.Fatalf("429: %+v", ve)
	}
	// A fault on the token request itself.
	h2 := newHarness(t, nil)
	h2.sim.Faults().FailNext(1, http.StatusBadGateway)
	_, err = h2.client.CheckCard(ctx, demo, "", "x@example.com", "")
	if ve := vendorError(t, err, vendors.Transient, CodeServerError); ve.Op != OpAuth {
		t.Fatalf("token 502: %+v", ve)
	}
	// A transport failure.
	h2.srv.Close()
	_, err = h2.client.CheckCard(ctx, Session{CampaignID: DemoCampaignID, DeviceType: DeviceIOS}, "", "x@example.com", "")
	vendorError(t, err, vendors.Transient, "")
}

func TestOneTokenRequestUnderConcurrency(t *testing.T) {
	h := newHarness(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := h.client.CheckCard(t.Context(), demo, "", DemoCardHolderEmail, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.sim.CountRequests("POST", "/auth"); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if n := h.sim.CountRequests("GET", "/customer/checkcard"); n != 100 {
		t.Fatalf("checkcard requests = %d", n)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	const email = "leak.check@example.com"
	pw := secret.New("Very-Secret-Password-42")
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	keep(h.client.VerifyEmail(ctx, demo, email, ""))
	code := h.code(t, email)
	wrong := "070707"
	if code.Reveal() == wrong {
		wrong = "080808"
	}
	_, err := h.client.RegisterWithCode(ctx, demo, Registration{VerificationCode: secret.New(wrong), Password: pw, Username: email, Email: email})
	keep(err)
	_, err = h.client.RegisterWithCode(ctx, demo, Registration{VerificationCode: code, Password: pw, Username: DemoRegisteredEmail, Email: email})
	keep(err)
	_, err = h.client.Customer(ctx, demo, DemoRegisteredEmail, pw) // wrong password
	keep(err)
	keep(h.client.GenerateVerificationCode(ctx, demo, DemoCardHolderID, DemoCardHolderEmail, ""))
	cardCode := h.code(t, DemoCardHolderEmail)
	_, err = h.client.ChangeCredentialsWithCode(ctx, demo, DemoCardHolderID, "x", secret.New("1"), cardCode) // invalid password
	keep(err)
	keep(h.client.UpdateCustomer(ctx, demo, DemoRegisteredEmail, secret.New(DemoRegisteredPassword), map[string]any{"birthdate": ""}))
	if len(errs) < 5 {
		t.Fatalf("only %d errors: %v", len(errs), errs)
	}
	var sink bytes.Buffer
	for _, err := range errs {
		fmt.Fprintf(&sink, "%v\n%+v\n%#v\n", err, err, err)
	}
	// Times are blanked: their digits could match a 6-digit code.
	noTimes := func(rs []Request) []byte {
		for i := range rs {
			rs[i].Time = time.Time{}
		}
		b, _ := json.Marshal(rs)
		return b
	}
	sink.Write(noTimes(h.sim.Requests()))
	custs, _ := json.Marshal(h.sim.Customers())
	sink.Write(custs)
	resp, err := http.Get(h.srv.URL + "/_sim/requests")
	if err != nil {
		t.Fatal(err)
	}
	var logged []Request
	err = json.NewDecoder(resp.Body).Decode(&logged)
	resp.Body.Close()
	if err != nil || len(logged) == 0 {
		t.Fatalf("/_sim/requests: %d entries, %v", len(logged), err)
	}
	sink.Write(noTimes(logged))
	for _, s := range []string{pw.Reveal(), code.Reveal(), wrong, cardCode.Reveal(), DemoRegisteredPassword, DemoAPIKey, "Bearer"} {
		if strings.Contains(sink.String(), s) {
			i := strings.Index(sink.String(), s)
			t.Errorf("%q leaked into errors or the request log: …%s…", s, sink.String()[max(i-80, 0):min(i+40, sink.Len())])
		}
	}
}

func TestSimulatorAdmin(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	if err := h.client.VerifyEmail(ctx, demo, "Admin.Check@example.com", ""); err != nil {
		t.Fatal(err)
	}
	get := func(path string, out any) {
		t.Helper()
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var codes []SentCode
	get("/_sim/codes?to=admin.check@example.com", &codes)
	if len(codes) != 1 || codes[0].Purpose != PurposeRegistration || len(codes[0].Code) != 6 {
		t.Fatalf("codes = %+v", codes)
	}
	var custs []map[string]any
	get("/_sim/customers", &custs)
	if len(custs) != 2 || custs[1]["registered"] != true || custs[0]["registered"] != false || custs[1]["password"] != nil {
		t.Fatalf("customers = %v", custs)
	}
	var reqs []Request
	get("/_sim/requests?path=/customer/verifyemail", &reqs)
	if len(reqs) != 1 || reqs[0].Scope != ScopeCustomerSynchro || reqs[0].Status != 200 {
		t.Fatalf("requests = %+v", reqs)
	}
	var faults map[string]any
	get("/_sim/faults", &faults)
	if faults["pendingFailures"] != 0.0 {
		t.Fatalf("faults = %v", faults)
	}
	resp, err := http.Post(h.srv.URL+"/_sim/customers", "application/json", strings.NewReader(`{"email":"seeded@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed = %d", resp.StatusCode)
	}
	if res, err := h.client.CheckCard(ctx, demo, "", "seeded@example.com", ""); err != nil || res.Branch != BranchHasCard {
		t.Fatalf("seeded customer: %+v, %v", res, err)
	}
}

func TestFidelyCode(t *testing.T) {
	for _, card := range []string{"4000000001", "", "12345678901234567890"} {
		if fc := fidelyCode(card); len(fc) != 14 || strings.Trim(fc, "0123456789") != "" {
			t.Errorf("fidelyCode(%q) = %q", card, fc)
		}
	}
}
