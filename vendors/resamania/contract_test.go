package resamania

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/fault"
)

// The contract: the client run against the simulator over HTTP, for every
// behaviour the flows rely on.

const env = "/resa2-staging"

var (
	paris     = Scope{ClubID: "/demoapi/clubs/1357", NetworkNodeID: "/demoapi/network_nodes/101"}
	lyon      = Scope{ClubID: "/demoapi/clubs/1358", NetworkNodeID: "/demoapi/network_nodes/102"}
	network   = Scope{NetworkNodeID: "/demoapi/network_nodes/100"}
	justine   = "justine.doe@example.com" // seeded prospect in Lyon, mobile +33612341615
	johnPlus  = "john+test@example.com"   // seeded client in Paris
	newPerson = NewContact{FamilyName: "Dev", GivenName: "Test", BirthDate: "2000-01-01", Email: "new.person@example.com",
		Gender: "male", Mobile: "+336123456789", Address: &Address{AddressCountry: "France", AddressLocality: "Toulon",
			StreetAddress: "52 chemin du test", PostalCode: "83390"}}
)

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

// harness is a simulator behind an httptest.Server and a client of its
// default account.
type harness struct {
	sim    *Simulator
	srv    *httptest.Server
	client *Client
}

// newHarness starts DefaultSimConfig changed by edit (rate limits off
// unless edit sets them) and a client with opts.
func newHarness(t *testing.T, edit func(*SimConfig), opts ...Option) *harness {
	t.Helper()
	cfg := DefaultSimConfig()
	cfg.RateLimit = RateLimit{PerMinute: -1, SpikeArrest: -1}
	if edit != nil {
		edit(&cfg)
	}
	sim := NewSimulator(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	h := &harness{sim: sim, srv: srv}
	h.client = h.newClient(t, demoConfig(srv.URL+env), opts...)
	return h
}

func demoConfig(baseURL string) Config {
	return Config{BaseURL: baseURL, ClientToken: "demoapi", ClientID: "demo-client",
		ClientSecret: secret.New("demo-secret"), APIKey: secret.New("demo-api-key")}
}

func (h *harness) newClient(t *testing.T, cfg Config, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(cfg, append([]Option{WithHTTPClient(h.srv.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *harness) tokenRequests() int { return h.sim.CountRequests(http.MethodPost, "/oauth/v2/token") }

// vendorError asserts err is a resamania *vendors.Error of kind and status.
func vendorError(t *testing.T, err error, kind vendors.Kind, status int) *vendors.Error {
	t.Helper()
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *vendors.Error", err, err)
	}
	if ve.Vendor != Vendor || ve.Kind != kind || ve.Status != status {
		t.Fatalf("error = %+v, want vendor %s kind %v status %d", ve, Vendor, kind, status)
	}
	return ve
}

func TestContractTokenFetchedOnceUnderConcurrency(t *testing.T) {
	// Latency keeps the token request in flight while the callers pile up.
	h := newHarness(t, func(c *SimConfig) { c.Faults = fault.Config{Latency: 20 * time.Millisecond} })
	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.tokenRequests(); n != 1 {
		t.Fatalf("%d token requests for %d concurrent calls, want 1", n, callers)
	}
	if n := h.sim.CountRequests(http.MethodGet, "/contacts"); n != callers {
		t.Fatalf("%d API requests, want %d", n, callers)
	}
}

func TestContractTokenRefreshedBeforeExpiry(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, func(c *SimConfig) { c.TokenTTL = time.Minute; c.Clock = clock.Now }, WithClock(clock.Now))
	find := func() {
		t.Helper()
		if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
			t.Fatal(err)
		}
	}
	find()
	clock.Advance(30 * time.Second) // within the token's life, before the refresh margin
	find()
	if n := h.tokenRequests(); n != 1 {
		t.Fatalf("token requests = %d after 30s of a 60s token, want 1", n)
	}
	clock.Advance(20 * time.Second) // inside the margin (a quarter of the life): refresh
	find()
	if n := h.tokenRequests(); n != 2 {
		t.Fatalf("token requests = %d after 50s of a 60s token, want 2", n)
	}
	for _, r := range h.sim.Requests() {
		if r.Status == http.StatusUnauthorized {
			t.Fatalf("a refresh before expiry should avoid 401s: %+v", r)
		}
	}
}

func TestContractReauthenticatesOnceOn401(t *testing.T) {
	tests := []struct {
		name   string
		refuse func(*harness, *fakeClock) // makes the vendor refuse the cached token
	}{
		{"revoked", func(h *harness, _ *fakeClock) { h.sim.RevokeTokens() }},
		// The simulator's clock moves past expiry, the client's does not.
		{"expired", func(h *harness, c *fakeClock) { c.Advance(2 * time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simClock := newFakeClock()
			h := newHarness(t, func(c *SimConfig) { c.Clock = simClock.Now })
			if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
				t.Fatal(err)
			}
			tt.refuse(h, simClock)
			got, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
			if err != nil || len(got) != 1 {
				t.Fatalf("after re-auth: %v, %v", got, err)
			}
			if n := h.tokenRequests(); n != 2 {
				t.Fatalf("token requests = %d, want 2", n)
			}
			statuses := []int{}
			for _, r := range h.sim.Requests() {
				if r.Route == "/contacts" {
					statuses = append(statuses, r.Status)
				}
			}
			if !slices.Equal(statuses, []int{200, 401, 200}) {
				t.Fatalf("API statuses = %v, want [200 401 200]", statuses)
			}
		})
	}
}

func TestContractPersistent401IsPermanentAfterOneRetry(t *testing.T) {
	h := newHarness(t, nil)
	// An API that refuses every token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/contacts") {
			oauthError(w, http.StatusUnauthorized, "invalid_grant", "The access token provided is invalid.")
			return
		}
		h.sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := h.newClient(t, demoConfig(srv.URL+env))
	_, err := c.FindContactsByEmail(t.Context(), paris, johnPlus)
	ve := vendorError(t, err, vendors.Permanent, 401)
	if ve.Code != "invalid_grant" || ve.Op != OpFindContactsByEmail {
		t.Fatalf("error = %+v", ve)
	}
	if n := h.tokenRequests(); n != 2 {
		t.Fatalf("token requests = %d, want 2 (one retry)", n)
	}
}

func TestContractFindByEmail(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name  string
		scope Scope
		email string
		want  int
	}{
		{"plus sign is encoded", paris, johnPlus, 1},
		{"email matched exactly", paris, "john@example.com", 0},
		{"scoped to the club", lyon, johnPlus, 0},
		{"network node above the clubs", network, justine, 1},
		{"club header alone", Scope{ClubID: lyon.ClubID}, justine, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.client.FindContactsByEmail(t.Context(), tt.scope, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d contacts, want %d", len(got), tt.want)
			}
			if tt.want == 1 && (got[0].Email != tt.email || !strings.HasPrefix(got[0].ID, "/demoapi/contacts/") || got[0].Number == "") {
				t.Fatalf("contact = %+v", got[0])
			}
		})
	}
	var raw string
	for _, r := range h.sim.Requests() {
		if strings.Contains(r.Query, "john") {
			raw = r.Query
			break
		}
	}
	if raw != "email=john%2Btest%40example.com" {
		t.Fatalf("raw query = %q, want email=john%%2Btest%%40example.com", raw)
	}
}

func TestContractFindFullContact(t *testing.T) {
	h := newHarness(t, nil)
	got, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	c := got[0]
	if c.GivenName != "Test" || c.FamilyName != "John" || c.BirthDate != "1990-01-01" || c.State != StateClient ||
		c.ClubID != paris.ClubID || c.Gender != "" || c.Address == nil || c.Address.AddressCountryISO != "FR" || c.Address.PostalCode != "06000" {
		t.Fatalf("contact = %+v address %+v", c, c.Address)
	}
}

func TestContractCreateContact(t *testing.T) {
	h := newHarness(t, nil)
	got, err := h.client.CreateContact(t.Context(), paris, newPerson)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.ID, "/demoapi/contacts/") || got.Number != "C"+strings.TrimPrefix(got.ID, "/demoapi/contacts/") ||
		got.State != StateProspect || got.ClubID != paris.ClubID || got.Email != newPerson.Email || got.Address == nil {
		t.Fatalf("created = %+v", got)
	}
	if n := h.sim.CountRequests(http.MethodPost, "/contacts"); n != 1 {
		t.Fatalf("POST /contacts sent %d times, want 1", n)
	}
	found, err := h.client.FindContactsByEmail(t.Context(), paris, newPerson.Email)
	if err != nil || len(found) != 1 || found[0].ID != got.ID {
		t.Fatalf("find after create: %+v %v", found, err)
	}
	if !slices.ContainsFunc(h.sim.Contacts("demoapi"), func(c Contact) bool { return c.ID == got.ID }) {
		t.Fatal("the simulator's state lacks the contact")
	}

	temp := newPerson
	temp.Email, temp.State, temp.ClubID = "temp@example.com", StateTemp, lyon.ClubID
	got, err = h.client.CreateContact(t.Context(), paris, temp)
	if err != nil || got.State != StateTemp || got.ClubID != lyon.ClubID {
		t.Fatalf("temp contact in another club: %+v %v", got, err)
	}
}

func TestContractEmailAlreadyUsedAcrossClubs(t *testing.T) {
	h := newHarness(t, nil)
	in := newPerson
	in.Email = justine // exists in Lyon; created from Paris
	_, err := h.client.CreateContact(t.Context(), paris, in)
	ve := vendorError(t, err, vendors.Permanent, 400)
	if !IsEmailAlreadyUsed(err) || ve.Code != CodeEmailAlreadyUsed || ve.Op != OpCreateContact {
		t.Fatalf("error = %+v", ve)
	}
}

func TestContractRequiredFields(t *testing.T) {
	h := newHarness(t, func(c *SimConfig) {
		c.Accounts[0].RequiredFields = append(DefaultRequiredFields(), "mobile", "address.postalCode")
	})
	in := newPerson
	in.FamilyName, in.Mobile, in.Address = "", "", nil
	_, err := h.client.CreateContact(t.Context(), paris, in)
	ve := vendorError(t, err, vendors.Permanent, 400)
	want := []vendors.FieldError{{Field: "familyName", Message: "required"}, {Field: "mobile", Message: "required"},
		{Field: "address.postalCode", Message: "required"}}
	if ve.Code != CodeValidation || !slices.Equal(ve.Fields, want) {
		t.Fatalf("error = %+v, want Fields %v", ve, want)
	}
	if IsEmailAlreadyUsed(err) {
		t.Fatal("a validation error is not email-already-used")
	}
	if n := len(h.sim.Contacts("demoapi")); n != 2 {
		t.Fatalf("%d contacts after a refused create, want the 2 seeded", n)
	}
}

func TestContractRateLimited(t *testing.T) {
	h := newHarness(t, func(c *SimConfig) { c.RateLimit = RateLimit{PerMinute: 2, SpikeArrest: -1} })
	// The token request and the first call use the minute's budget.
	if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
	ve := vendorError(t, err, vendors.RateLimited, 429)
	if ve.RetryAfter <= 0 || ve.RetryAfter > time.Minute || !vendors.IsRetryable(err) {
		t.Fatalf("error = %+v, want a RetryAfter within the minute", ve)
	}
}

func TestContractInjectedFaults(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*fault.Injector)
		kind   vendors.Kind
		status int
	}{
		{"FailNext 503", func(i *fault.Injector) { i.FailNext(1, 0) }, vendors.Transient, 503},
		{"FailNext 500", func(i *fault.Injector) { i.FailNext(1, 500) }, vendors.Transient, 500},
		{"FailNext 429", func(i *fault.Injector) { i.FailNext(1, 429) }, vendors.RateLimited, 429},
		{"error rate", func(i *fault.Injector) { i.Set(fault.Config{ErrorRate: 1}) }, vendors.Transient, 503},
		{"rate-limit rate", func(i *fault.Injector) { i.Set(fault.Config{RateLimitRate: 1, RetryAfter: 3 * time.Second}) }, vendors.RateLimited, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
				t.Fatal(err) // the token is cached: the fault hits the API call
			}
			tt.inject(h.sim.Faults())
			_, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
			ve := vendorError(t, err, tt.kind, tt.status)
			if tt.kind == vendors.RateLimited && ve.RetryAfter <= 0 {
				t.Fatalf("429 without RetryAfter: %+v", ve)
			}
			h.sim.Faults().Set(fault.Config{})
			if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

func TestContractTimeouts(t *testing.T) {
	h := newHarness(t, nil)
	c := h.newClient(t, demoConfig(h.srv.URL+env), WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}))
	if _, err := c.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
		t.Fatal(err)
	}
	h.sim.Faults().Set(fault.Config{TimeoutRate: 1})

	_, err := c.FindContactsByEmail(t.Context(), paris, johnPlus)
	ve := vendorError(t, err, vendors.Transient, 0)
	if ve.Err == nil || strings.Contains(ve.Error(), "example.com") {
		t.Fatalf("transport error = %v: want the cause, without the query", ve)
	}

	// The caller's own deadline is not the vendor's fault: returned as is.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = h.client.FindContactsByEmail(ctx, paris, johnPlus)
	if !errors.Is(err, context.DeadlineExceeded) || vendors.IsRetryable(err) {
		t.Fatalf("caller deadline: %v", err)
	}
}

func TestContractWrongCredentials(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name string
		edit func(*Config)
		code string
	}{
		{"wrong API key", func(c *Config) { c.APIKey = secret.New("nope") }, CodeUnauthorized},
		{"wrong client secret", func(c *Config) { c.ClientSecret = secret.New("nope") }, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := demoConfig(h.srv.URL + env)
			tt.edit(&cfg)
			_, err := h.newClient(t, cfg).FindContactsByEmail(t.Context(), paris, johnPlus)
			ve := vendorError(t, err, vendors.Permanent, 401)
			if ve.Code != tt.code || ve.Op != OpToken {
				t.Fatalf("error = %+v, want code %s", ve, tt.code)
			}
			if strings.Contains(ve.Error(), "nope") {
				t.Fatalf("the error shows the credential: %v", ve)
			}
		})
	}
}

func TestContractNetworkSearchMasksPhone(t *testing.T) {
	h := newHarness(t, nil)
	got, err := h.client.SearchNetworkContacts(t.Context(), paris, justine)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d, want the Lyon contact", len(got))
	}
	c := got[0]
	if c.PartialPhoneNumber != "******1615" || c.ClubID != lyon.ClubID || c.State != StateProspect || c.GivenName != "Justine" || c.ID == "" {
		t.Fatalf("network contact = %+v", c)
	}
}

func TestContractContactTokenCannotSearch(t *testing.T) {
	h := newHarness(t, nil)
	asContact := h.client.As(ContactCredentials(justine))
	_, err := asContact.FindContactsByEmail(t.Context(), lyon, justine)
	ve := vendorError(t, err, vendors.Permanent, 403)
	if ve.Code != CodeUnauthorizedEndpoint {
		t.Fatalf("error = %+v", ve)
	}
	_, err = asContact.SearchNetworkContacts(t.Context(), lyon, justine)
	vendorError(t, err, vendors.Permanent, 403)
	_, err = asContact.CreateContact(t.Context(), lyon, newPerson)
	vendorError(t, err, vendors.Permanent, 403)

	grants := map[string]int{}
	for _, r := range h.sim.Requests() {
		grants[r.Grant]++
	}
	if grants[GrantContactCredentials] != 4 || grants[GrantClientCredentials] != 0 {
		t.Fatalf("grants used = %v, want one contact token request and three calls with it", grants)
	}

	// A contact that does not exist cannot authenticate.
	_, err = h.client.As(ContactCredentials("nobody@example.com")).FindContactsByEmail(t.Context(), lyon, justine)
	if ve := vendorError(t, err, vendors.Permanent, 400); ve.Code != "invalid_grant" {
		t.Fatalf("error = %+v", ve)
	}
}

func TestContractClubToken(t *testing.T) {
	h := newHarness(t, nil)
	asLyon := h.client.As(ClubCredentials(lyon.ClubID))
	got, err := asLyon.FindContactsByEmail(t.Context(), Scope{}, justine)
	if err != nil || len(got) != 1 {
		t.Fatalf("club token: %v %v", got, err)
	}
	_, err = asLyon.FindContactsByEmail(t.Context(), paris, justine)
	vendorError(t, err, vendors.Permanent, 403)
	// Tokens are cached per grant: the client token is separate.
	if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
		t.Fatal(err)
	}
	if n := h.tokenRequests(); n != 2 {
		t.Fatalf("token requests = %d, want one per grant", n)
	}
}

func TestContractScopeErrors(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name  string
		scope Scope
	}{
		{"bare club id", Scope{ClubID: "1357"}},
		{"unknown club", Scope{ClubID: "/demoapi/clubs/9"}},
		{"node of another club", Scope{ClubID: paris.ClubID, NetworkNodeID: lyon.NetworkNodeID}},
		{"no scope", Scope{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.FindContactsByEmail(t.Context(), tt.scope, johnPlus)
			if ve := vendorError(t, err, vendors.Permanent, 404); ve.Code != CodeNotFound {
				t.Fatalf("error = %+v", ve)
			}
		})
	}
	in := newPerson
	in.ClubID = "1357"
	_, err := h.client.CreateContact(t.Context(), paris, in)
	vendorError(t, err, vendors.Permanent, 404)
}

func TestContractEnvironmentLevelTokenPath(t *testing.T) {
	h := newHarness(t, nil)
	c := h.newClient(t, demoConfig(h.srv.URL+env), WithTokenPath("/oauth/v2/token"))
	if _, err := c.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
		t.Fatal(err)
	}
	reqs := h.sim.Requests()
	if reqs[0].Path != env+"/oauth/v2/token" || reqs[0].Status != 200 {
		t.Fatalf("token request = %+v", reqs[0])
	}
}

func TestContractClientRateLimit(t *testing.T) {
	h := newHarness(t, nil)
	c := h.newClient(t, demoConfig(h.srv.URL+env), WithRateLimit(1, 1))
	if _, err := c.FindContactsByEmail(t.Context(), paris, johnPlus); err == nil {
		// The token request took the burst; the call waited about a second.
	} else {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := c.FindContactsByEmail(ctx, paris, johnPlus)
	if ve := vendorError(t, err, vendors.RateLimited, 0); ve.RetryAfter <= 0 {
		t.Fatalf("error = %+v", ve)
	}
}
