package cloudsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/fault"
)

const tokenPath = "/realms/CloudSuite/protocol/openid-connect/token"

// clock is a fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	sim       *Simulator
	srv       *httptest.Server
	client    *Client
	simClock  *clock // the simulator's clock
	cliClock  *clock // the client's clock
	authMu    sync.Mutex
	bearers   []string // every Authorization header the API received
	cfgClient Config
}

// newHarness serves sim behind a recorder of the bearer tokens sent and
// returns a client of the demo origin. The simulator and the client have
// clocks of their own, so that a test can expire a token on one side only.
func newHarness(t *testing.T, cfg SimConfig) *harness {
	t.Helper()
	h := &harness{simClock: newClock(), cliClock: newClock()}
	h.sim = NewSimulator(cfg, WithSimClock(h.simClock.Now))
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			h.authMu.Lock()
			h.bearers = append(h.bearers, strings.TrimPrefix(a, "Bearer "))
			h.authMu.Unlock()
		}
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	h.cfgClient = Config{
		BaseURL: h.srv.URL, TokenURL: h.srv.URL + tokenPath,
		ClientID: DemoClientID, ClientSecret: secret.New(DemoClientSecret), Origin: DemoOrigin,
	}
	h.client = h.newClient(t, h.cfgClient)
	return h
}

func (h *harness) newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg, WithHTTPClient(h.srv.Client()), WithClock(h.cliClock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokens returns the distinct bearer tokens the API received.
func (h *harness) tokens() []string {
	h.authMu.Lock()
	defer h.authMu.Unlock()
	out := slices.Clone(h.bearers)
	slices.Sort(out)
	return slices.Compact(out)
}

// assertNoSecrets fails if the client secret or a token appears in any of
// texts or in the simulator's request log.
func (h *harness) assertNoSecrets(t *testing.T, texts ...string) {
	t.Helper()
	logged, err := json.Marshal(h.sim.Requests())
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, string(logged))
	secrets := append([]string{DemoClientSecret}, h.tokens()...)
	for _, s := range texts {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(s, sec) {
				t.Fatalf("a secret leaks into %q", s)
			}
		}
	}
}

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

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + fmt.Sprintf(" %+v %#v", err, err)
}

func TestTokenFetchedOnceForConcurrentCallers(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	key := h.sim.AddUser(DemoOrigin, SimUser{Email: "a@example.com", Profiles: []map[string]any{{"name": "Cloudsuite"}}})
	u, _ := h.sim.User(DemoOrigin, key)
	id := u["user_profiles"].([]int64)[0]

	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.client.Profile(t.Context(), id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.sim.CountRequests(http.MethodPost, tokenPath); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if n := h.sim.CountRequests(http.MethodGet, fmt.Sprintf("/api/userprofile/%d", id)); n != 16 {
		t.Fatalf("profile requests = %d", n)
	}
	// The token is reused by later calls.
	if _, err := h.client.Profile(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.CountRequests(http.MethodPost, tokenPath); n != 1 || len(h.tokens()) != 1 {
		t.Fatalf("token requests = %d, tokens %d", n, len(h.tokens()))
	}
	h.assertNoSecrets(t)
}

func TestExpiredTokenReauthenticatesOnce(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()
	if _, err := h.client.NewUsers(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// Only the simulator's clock moves: the client still believes its token
	// valid and meets a 401.
	h.simClock.Advance(DefaultSimTokenTTL + time.Second)
	if _, err := h.client.NewUsers(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.CountRequests(http.MethodPost, tokenPath); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	var statuses []int
	for _, r := range h.sim.Requests() {
		if strings.HasPrefix(r.Path, "/api/") {
			statuses = append(statuses, r.Status)
		}
	}
	if !slices.Equal(statuses, []int{200, 401, 200}) {
		t.Fatalf("API statuses %v, want [200 401 200]", statuses)
	}
	if len(h.tokens()) != 2 {
		t.Fatalf("tokens used: %d", len(h.tokens()))
	}
	h.assertNoSecrets(t)
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()
	if _, err := h.client.NewUsers(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// 280 s of a 300 s token: less than 30 s remain, the client refreshes
	// without waiting for a 401.
	h.simClock.Advance(280 * time.Second)
	h.cliClock.Advance(280 * time.Second)
	if _, err := h.client.NewUsers(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.CountRequests(http.MethodPost, tokenPath); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	for _, r := range h.sim.Requests() {
		if r.Status == http.StatusUnauthorized {
			t.Fatalf("unexpected 401: %+v", r)
		}
	}
}

func TestSecond401IsPermanent(t *testing.T) {
	sim := NewSimulator(DefaultSimConfig())
	var api int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			sim.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		api++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"detail":"Given token not valid for any token type"}`)
	}))
	defer srv.Close()
	c, err := NewClient(Config{BaseURL: srv.URL, TokenURL: srv.URL + tokenPath, ClientID: DemoClientID,
		ClientSecret: secret.New(DemoClientSecret), Origin: DemoOrigin}, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	err = c.UpdateUser(t.Context(), "k", map[string]any{"active": false})
	ve := vendorError(t, err, vendors.Permanent, CodeNotAuthenticated)
	if ve.Status != http.StatusUnauthorized || ve.Op != OpUpdateUser || ve.Message != "Given token not valid for any token type" {
		t.Fatalf("%+v", ve)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := sim.CountRequests(http.MethodPost, tokenPath); n != 2 || api != 2 {
		t.Fatalf("token requests %d, API requests %d; want 2 and 2", n, api)
	}
}

func TestWrongSecretIsPermanentInvalidClient(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	cfg := h.cfgClient
	cfg.ClientSecret = secret.New("wrong-secret-xyz")
	c := h.newClient(t, cfg)
	_, err := c.NewUsers(t.Context(), "")
	ve := vendorError(t, err, vendors.Permanent, CodeInvalidClient)
	if ve.Op != OpToken || ve.Status != http.StatusUnauthorized || !vendors.IsPermanent(err) {
		t.Fatalf("%+v", ve)
	}
	if !strings.Contains(ve.Message, "clientId") || !strings.Contains(ve.Message, "clientSecret") {
		t.Fatalf("message %q does not tell what to check", ve.Message)
	}
	if s := errText(err) + fmt.Sprintf("%+v %v", cfg, cfg.ClientSecret); strings.Contains(s, "wrong-secret") {
		t.Fatalf("the secret leaks: %s", s)
	}
	if n := h.sim.CountRequests("", "/api/origin/DEMO/user/"); n != 0 {
		t.Fatalf("the API was called %d times without a token", n)
	}
	h.assertNoSecrets(t, errText(err))
}

// seedPaging seeds the demo origin: five new inactive users created one
// minute apart from 09:00, plus users that the new-users filter excludes.
func seedPaging(h *harness) (want []string) {
	base := time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		key := h.sim.AddUser(DemoOrigin, SimUser{
			Email: fmt.Sprintf("new%d@example.com", i), CreateDate: base.Add(time.Duration(i)*time.Minute + 507764*time.Microsecond),
			Profiles: []map[string]any{{"name": fmt.Sprintf("Company %d", i)}},
		})
		want = append(want, key)
	}
	h.sim.AddUser(DemoOrigin, SimUser{Email: "active@example.com", CreateDate: base.Add(90 * time.Second), Active: true})
	h.sim.AddUser(DemoOrigin, SimUser{Email: "erp@example.com", CreateDate: base.Add(150 * time.Second), Registration: "erp"})
	h.sim.AddUser("OTHER", SimUser{Email: "other@example.com", CreateDate: base})
	return want
}

func TestNewUsersFollowsPages(t *testing.T) {
	cfg := DefaultSimConfig()
	cfg.PageSize = 2
	h := newHarness(t, cfg)
	want := seedPaging(h)
	users, err := h.client.NewUsers(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range users {
		keys = append(keys, u.Key)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	u := users[0]
	if u.Email != "new0@example.com" || u.CreateDate != "2024-03-04T09:00:00.507764" || len(u.Profiles) != 1 {
		t.Fatalf("first user %+v", u)
	}
	var raw map[string]any
	if err := json.Unmarshal(u.Raw, &raw); err != nil || raw["key"] != u.Key || raw["registration"] != "new" || raw["active"] != false {
		t.Fatalf("raw %s (%v)", u.Raw, err)
	}
	if n := h.sim.CountRequests(http.MethodGet, "/api/origin/DEMO/user/"); n != 3 {
		t.Fatalf("list requests = %d, want 3 pages", n)
	}
	var queries []string
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodGet {
			queries = append(queries, r.Query)
		}
	}
	wantQ := []string{"inactive=true&registration=new", "inactive=true&page=2&registration=new", "inactive=true&page=3&registration=new"}
	if !slices.Equal(queries, wantQ) {
		t.Fatalf("queries %q, want %q", queries, wantQ)
	}
}

func TestNewUsersSince(t *testing.T) {
	cfg := DefaultSimConfig()
	cfg.PageSize = 2
	h := newHarness(t, cfg)
	want := seedPaging(h)
	for _, tt := range []struct {
		since string
		want  []string
	}{
		{"2024-03-04T09:02:00", want[2:]},
		{"2024-03-04T09:02:00.507764", want[2:]},
		{"2024-03-04T09:02:00.507765", want[3:]},
		{"2024-03-04 09:03:00", want[3:]},
		{"2024-03-04T10:02:00+01:00", want[2:]},
		{"2024-03-04", want},
		{"2024-03-05", nil},
	} {
		t.Run(tt.since, func(t *testing.T) {
			users, err := h.client.NewUsers(t.Context(), tt.since)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, u := range users {
				keys = append(keys, u.Key)
			}
			if !slices.Equal(keys, tt.want) {
				t.Fatalf("keys %v, want %v", keys, tt.want)
			}
		})
	}
	_, err := h.client.NewUsers(t.Context(), "yesterday")
	ve := vendorError(t, err, vendors.Permanent, CodeInvalid)
	if ve.Status != http.StatusBadRequest || len(ve.Fields) != 1 || ve.Fields[0] != (vendors.FieldError{Field: "create_date__gte", Message: "Enter a valid date/time."}) {
		t.Fatalf("%+v", ve)
	}
}

// pagesServer serves the token endpoint (from a simulator) and a first page
// of users whose next is nextURL(srv).
func pagesServer(t *testing.T, next func(srvURL string) string) (*Client, *httptest.Server) {
	t.Helper()
	sim := NewSimulator(DefaultSimConfig())
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			sim.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"count": 2, "next": next(srv.URL), "previous": nil,
			"results": []any{map[string]any{"key": "a", "email": "a@example.com", "user_profiles": []int{1}}},
		})
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{BaseURL: srv.URL + "/api/", TokenURL: srv.URL + tokenPath, ClientID: DemoClientID,
		ClientSecret: secret.New(DemoClientSecret), Origin: DemoOrigin}, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestNewUsersRefusesForeignNext(t *testing.T) {
	var other int
	var mu sync.Mutex
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		other++
		mu.Unlock()
		_, _ = io.WriteString(w, `{"count":0,"next":null,"previous":null,"results":[]}`)
	}))
	defer elsewhere.Close()
	for name, next := range map[string]func(string) string{
		"other host": func(string) string { return elsewhere.URL + "/api/origin/DEMO/user/?page=2" },
		"other scheme": func(u string) string {
			return strings.Replace(u, "http://", "https://", 1) + "/api/origin/DEMO/user/?page=2"
		},
		"user info": func(u string) string {
			return strings.Replace(u, "http://", "http://x:y@", 1) + "/api/origin/DEMO/user/?page=2"
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := pagesServer(t, next)
			_, err := c.NewUsers(t.Context(), "")
			ve := vendorError(t, err, vendors.Permanent, CodeForeignNext)
			if ve.Op != OpListUsers {
				t.Fatalf("%+v", ve)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if other != 0 {
		t.Fatalf("the other host was called %d times", other)
	}
}

func TestNewUsersGuardsLoops(t *testing.T) {
	c, _ := pagesServer(t, func(u string) string { return u + "/api/origin/DEMO/user/?registration=new&inactive=true" })
	_, err := c.NewUsers(t.Context(), "")
	vendorError(t, err, vendors.Permanent, CodePagingLoop)

	// A relative next on the same host is followed (here: into the loop).
	c, _ = pagesServer(t, func(string) string { return "/api/origin/DEMO/user/?page=2" })
	_, err = c.NewUsers(t.Context(), "")
	vendorError(t, err, vendors.Permanent, CodePagingLoop)
}

func TestProfile(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	key := h.sim.AddUser(DemoOrigin, SimUser{Email: "buyer@example.com", Profiles: []map[string]any{{
		"name": "Cloudsuite", "street1": "Elzenkade", "house_number": "1", "addition": "a",
		"zip": "3992AD", "city": "Houten", "vat": "NL822898044B01",
	}}})
	u, _ := h.sim.User(DemoOrigin, key)
	id := u["user_profiles"].([]int64)[0]
	raw, err := h.client.Profile(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p["name"] != "Cloudsuite" || p["zip"] != "3992AD" || p["country"] != "NL" || p["delivery"] != true ||
		p["id"] != float64(id) || p["user"] != float64(u["id"].(int64)) || p["modified_date"] != nil || p["create_date"] == "" {
		t.Fatalf("profile %s", raw)
	}

	_, err = h.client.Profile(t.Context(), id+100)
	if !errors.Is(err, vendors.ErrNotFound) {
		t.Fatalf("missing profile: %v", err)
	}
	_, err = h.client.Profile(t.Context(), 0)
	vendorError(t, err, vendors.Permanent, CodeInvalidArgument)
}

func TestUpdateUser(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()
	key := h.sim.AddUser(DemoOrigin, SimUser{Email: "jan@example.com", FirstName: "Jan", LastName: "Jansen"})
	before, _ := h.sim.User(DemoOrigin, key)
	if err := h.client.PutCustomer(ctx, "C1", json.RawMessage(`{"name":"Cloudsuite BV"}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.client.UpdateUser(ctx, key, map[string]any{"authorised_customers": []string{"C1"}}); err != nil {
		t.Fatal(err)
	}
	after, _ := h.sim.User(DemoOrigin, key)
	if !slices.Equal(after["authorised_customers"].([]string), []string{"C1"}) {
		t.Fatalf("after %v", after)
	}
	for _, k := range []string{"id", "email", "first_name", "last_name", "create_date", "registration", "active"} {
		if after[k] != before[k] {
			t.Fatalf("%s changed: %v → %v", k, before[k], after[k])
		}
	}
	if h.sim.ActivationEmails(key) != 0 {
		t.Fatal("linking sent an activation e-mail")
	}

	err := h.client.UpdateUser(ctx, "0f8fad5b-d9cb-469f-a165-70867728950e", map[string]any{"active": false})
	ve := vendorError(t, err, vendors.Permanent, CodeNotFound)
	if ve.Status != http.StatusNotFound || ve.Op != OpUpdateUser || errors.Is(err, vendors.ErrNotFound) {
		t.Fatalf("unknown user: %+v", ve)
	}

	err = h.client.UpdateUser(ctx, key, map[string]any{"authorised_customers": []string{"NOPE"}, "first_name": "X"})
	ve = vendorError(t, err, vendors.Permanent, CodeInvalid)
	if len(ve.Fields) != 1 || ve.Fields[0].Field != "authorised_customers" || !strings.Contains(ve.Fields[0].Message, "object does not exist") {
		t.Fatalf("%+v", ve)
	}
	if u, _ := h.sim.User(DemoOrigin, key); u["first_name"] != "Jan" {
		t.Fatal("a refused PATCH changed the user")
	}
	vendorError(t, h.client.UpdateUser(ctx, "", map[string]any{"active": false}), vendors.Permanent, CodeInvalidArgument)
	vendorError(t, h.client.UpdateUser(ctx, key, nil), vendors.Permanent, CodeInvalidArgument)
	h.assertNoSecrets(t, errText(err))
}

func TestActivationTrigger(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()
	key := h.sim.AddUser(DemoOrigin, SimUser{Email: "jan@example.com"})
	if err := h.client.PutCustomer(ctx, "C1", json.RawMessage(`{"name":"Cloudsuite BV"}`)); err != nil {
		t.Fatal(err)
	}
	activate := map[string]any{"authorised_customers": []string{"C1"}, "registration": "new", "active": false}
	if err := h.client.UpdateUser(ctx, key, activate); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.ActivationEmails(key); n != 1 {
		t.Fatalf("activation e-mails = %d, want 1", n)
	}
	if err := h.client.UpdateUser(ctx, key, map[string]any{"active": false}); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.ActivationEmails(key); n != 1 {
		t.Fatalf("active alone triggered: %d", n)
	}
	if err := h.client.UpdateUser(ctx, key, map[string]any{"registration": "new", "active": false}); err != nil {
		t.Fatal(err)
	}
	if n := h.sim.ActivationEmails(key); n != 2 {
		t.Fatalf("activation e-mails = %d, want 2", n)
	}
	u, _ := h.sim.User(DemoOrigin, key)
	if u["registration"] != "new" || u["active"] != false || !slices.Equal(u["authorised_customers"].([]string), []string{"C1"}) {
		t.Fatalf("user %v", u)
	}
}

func TestPutCustomerCreatesThenReplaces(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()
	if err := h.client.PutCustomer(ctx, "CUST-1001", json.RawMessage(`{"name":"Cloudsuite BV","vat":"NL822898044B01","city":"Houten"}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.client.PutCustomer(ctx, "CUST-1001", json.RawMessage(`{"name":"Cloudsuite B.V."}`)); err != nil {
		t.Fatal(err)
	}
	c, ok := h.sim.Customer(DemoOrigin, "CUST-1001")
	if !ok || c["name"] != "Cloudsuite B.V." || c["key"] != "CUST-1001" || c["city"] != nil || h.sim.Customers(DemoOrigin) != 1 {
		t.Fatalf("customer %v (%d)", c, h.sim.Customers(DemoOrigin))
	}
	var statuses []int
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodPut {
			statuses = append(statuses, r.Status)
			if r.Path != "/api/origin/DEMO/customer/CUST-1001/" {
				t.Fatalf("path %q", r.Path)
			}
		}
	}
	if !slices.Equal(statuses, []int{http.StatusCreated, http.StatusOK}) {
		t.Fatalf("statuses %v", statuses)
	}
	// A key with a slash is escaped and round-trips.
	if err := h.client.PutCustomer(ctx, "A/B 1", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.sim.Customer(DemoOrigin, "A/B 1"); !ok {
		t.Fatal("escaped key not stored")
	}
	vendorError(t, h.client.PutCustomer(ctx, "K", json.RawMessage(`[1]`)), vendors.Permanent, CodeInvalidArgument)
	vendorError(t, h.client.PutCustomer(ctx, "", json.RawMessage(`{}`)), vendors.Permanent, CodeInvalidArgument)
}

func TestUnknownOrigin(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	cfg := h.cfgClient
	cfg.Origin = "NOPE"
	c := h.newClient(t, cfg)
	_, err := c.NewUsers(t.Context(), "")
	ve := vendorError(t, err, vendors.Permanent, CodeNotFound)
	if ve.Message != "Not found." || ve.Status != http.StatusNotFound {
		t.Fatalf("%+v", ve)
	}
}

func TestFaults(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	ctx := t.Context()

	// The token endpoint fails: the error is the token's.
	h.sim.Faults().FailNext(1, http.StatusServiceUnavailable)
	_, err := h.client.NewUsers(ctx, "")
	ve := vendorError(t, err, vendors.Transient, CodeServerError)
	if ve.Op != OpToken || ve.Status != http.StatusServiceUnavailable || !vendors.IsRetryable(err) {
		t.Fatalf("%+v", ve)
	}
	if _, err := h.client.NewUsers(ctx, ""); err != nil {
		t.Fatal(err)
	}

	h.sim.Faults().FailNext(1, 0)
	_, err = h.client.NewUsers(ctx, "")
	ve = vendorError(t, err, vendors.Transient, CodeServerError)
	if ve.Op != OpListUsers || ve.Status != http.StatusServiceUnavailable {
		t.Fatalf("%+v", ve)
	}

	h.sim.Faults().Set(fault.Config{RetryAfter: 7 * time.Second})
	h.sim.Faults().FailNext(1, http.StatusTooManyRequests)
	err = h.client.PutCustomer(ctx, "C1", json.RawMessage(`{"name":"x"}`))
	ve = vendorError(t, err, vendors.RateLimited, CodeThrottled)
	if ve.RetryAfter != 7*time.Second || vendors.RetryAfterOf(err) != 7*time.Second || ve.Op != OpPutCustomer {
		t.Fatalf("%+v", ve)
	}
	if h.sim.Customers(DemoOrigin) != 0 {
		t.Fatal("a rate-limited PUT was applied")
	}
	if err := h.client.PutCustomer(ctx, "C1", json.RawMessage(`{"name":"x"}`)); err != nil {
		t.Fatal(err)
	}
	h.assertNoSecrets(t, errText(err))
}

func TestTransportErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, err := NewClient(Config{BaseURL: base, TokenURL: base + tokenPath, ClientID: "id", ClientSecret: secret.New("s3cret-value"), Origin: "O"},
		WithHTTPClient(&http.Client{Timeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewUsers(t.Context(), "2024-01-01")
	ve := vendorError(t, err, vendors.Transient, "")
	if ve.Op != OpToken || strings.Contains(errText(err), "s3cret") {
		t.Fatalf("%v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.NewUsers(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestSecretsStayHidden(t *testing.T) {
	cfg := Config{BaseURL: "https://test-api.cloudsuite.io", TokenURL: "https://id.cloudsuite.io/realms/CloudSuite/protocol/openid-connect/token",
		ClientID: "id", ClientSecret: secret.New("super-secret-value"), Origin: "SOMEORIGIN"}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("client", "client", c, "cfg", cfg)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), fmt.Sprintf("%v %+v %#v %+v", c, c, c, *c), string(b), logged.String()} {
		if strings.Contains(s, "super-secret-value") {
			t.Fatalf("secret shown: %s", s)
		}
	}

	// A token endpoint that echoes the request in its error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"detail": "bad form " + r.PostForm.Encode(), "client_secret": []string{r.PostForm.Get("client_secret")}})
	}))
	defer srv.Close()
	cfg.BaseURL, cfg.TokenURL = srv.URL, srv.URL+tokenPath
	c, err = NewClient(cfg, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewUsers(t.Context(), "")
	ve := vendorError(t, err, vendors.Permanent, "")
	if s := errText(err) + fmt.Sprintf("%v", ve.Fields); strings.Contains(s, "super-secret-value") {
		t.Fatalf("secret echoed: %s", s)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{BaseURL: "https://test-api.cloudsuite.io", TokenURL: "https://id.cloudsuite.io/realms/CloudSuite/protocol/openid-connect/token",
		ClientID: "id", ClientSecret: secret.New("s"), Origin: "SOMEORIGIN"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if c, err := NewClient(good); err != nil || c.Origin() != "SOMEORIGIN" || !strings.Contains(c.String(), "SOMEORIGIN") {
		t.Fatalf("%v %v", c, err)
	}
	for name, tt := range map[string]struct {
		mod func(*Config)
		key string
	}{
		"no baseURL":    {func(c *Config) { c.BaseURL = "" }, "baseURL is required"},
		"ftp baseURL":   {func(c *Config) { c.BaseURL = "ftp://x" }, "baseURL"},
		"query baseURL": {func(c *Config) { c.BaseURL = "https://x/?a=b" }, "baseURL"},
		"no tokenURL":   {func(c *Config) { c.TokenURL = "" }, "tokenURL is required"},
		"bad tokenURL":  {func(c *Config) { c.TokenURL = "id.cloudsuite.io/token" }, "tokenURL"},
		"no clientId":   {func(c *Config) { c.ClientID = " " }, "clientId is required"},
		"no secret":     {func(c *Config) { c.ClientSecret = secret.String{} }, "clientSecret is required"},
		"no origin":     {func(c *Config) { c.Origin = "" }, "origin is required"},
		"slash origin":  {func(c *Config) { c.Origin = "a/b" }, "origin"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.key) || !strings.HasPrefix(err.Error(), "cloudsuite: ") {
				t.Fatalf("%v", err)
			}
			if _, err := NewClient(c); err == nil {
				t.Fatal("NewClient accepted it")
			}
		})
	}
}

func TestBaseURLVariants(t *testing.T) {
	for _, suffix := range []string{"", "/", "/api", "/api/", "/API", "/api//"} {
		t.Run(suffix, func(t *testing.T) {
			h := newHarness(t, DefaultSimConfig())
			cfg := h.cfgClient
			cfg.BaseURL += suffix
			c := h.newClient(t, cfg)
			h.sim.AddUser(DemoOrigin, SimUser{Email: "a@example.com"})
			users, err := c.NewUsers(t.Context(), "")
			if err != nil || len(users) != 1 {
				t.Fatalf("%v %v", users, err)
			}
			if n := h.sim.CountRequests(http.MethodGet, "/api/origin/DEMO/user/"); n != 1 {
				t.Fatalf("requests %+v", h.sim.Requests())
			}
		})
	}
}

// rawToken gets a token from the simulator over HTTP.
func rawToken(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.PostForm(h.srv.URL+tokenPath, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.TokenType != "Bearer" || out.ExpiresIn != 300 {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.AccessToken
}

// raw sends a request to the simulator with token (none if "") and returns
// the status and the decoded body.
func raw(t *testing.T, h *harness, token, method, path, body string) (int, map[string]any, *http.Response) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp
}

func TestSimulatorPostOnExistingKey(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	tok := rawToken(t, h)
	key := h.sim.AddUser(DemoOrigin, SimUser{Email: "a@example.com"})

	st, body, resp := raw(t, h, tok, http.MethodPost, "/api/origin/DEMO/user/", `{"key":"`+key+`","email":"b@example.com"}`)
	if st != http.StatusBadRequest || fmt.Sprint(body["key"]) != "[user with this key already exists.]" {
		t.Fatalf("user: %d %v", st, body)
	}
	if err := CheckResponse(resp); !IsAlreadyExists(err) {
		t.Fatalf("IsAlreadyExists(%v) = false", err)
	}
	st, body, _ = raw(t, h, tok, http.MethodPost, "/API/origin/DEMO/user/", `{"email":"c@example.com","first_name":"C"}`)
	if st != http.StatusCreated || body["registration"] != "new" || body["active"] != false || !isUUID(body["key"].(string)) {
		t.Fatalf("create: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodPost, "/api/origin/DEMO/user/", `{"first_name":"C"}`)
	if st != http.StatusBadRequest || fmt.Sprint(body["email"]) != "[This field is required.]" {
		t.Fatalf("no email: %d %v", st, body)
	}

	st, _, _ = raw(t, h, tok, http.MethodPost, "/api/origin/DEMO/customer/", `{"key":"C1","name":"x"}`)
	if st != http.StatusCreated || h.sim.Customers(DemoOrigin) != 1 {
		t.Fatalf("customer create: %d", st)
	}
	st, body, resp = raw(t, h, tok, http.MethodPost, "/api/origin/DEMO/customer/", `{"key":"C1","name":"y"}`)
	if st != http.StatusBadRequest || fmt.Sprint(body["key"]) != "[customer with this key already exists.]" {
		t.Fatalf("customer exists: %d %v", st, body)
	}
	if err := CheckResponse(resp); !IsAlreadyExists(err) {
		t.Fatalf("IsAlreadyExists(%v) = false", err)
	}
	if c, _ := h.sim.Customer(DemoOrigin, "C1"); c["name"] != "x" {
		t.Fatalf("refused POST changed the customer: %v", c)
	}
	st, body, _ = raw(t, h, tok, http.MethodPatch, "/api/origin/DEMO/customer/C1/", `{"city":"Houten"}`)
	if st != http.StatusOK || body["name"] != "x" || body["city"] != "Houten" {
		t.Fatalf("customer patch: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/customer/C1", "")
	if st != http.StatusOK || body["city"] != "Houten" {
		t.Fatalf("customer get: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodPatch, "/api/origin/DEMO/customer/C2/", `{"city":"Houten"}`)
	if st != http.StatusNotFound || body["detail"] != "Not found." {
		t.Fatalf("customer patch missing: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodPut, "/api/origin/DEMO/customer/C3/", `["x"]`)
	if st != http.StatusBadRequest || fmt.Sprint(body["non_field_errors"]) != "[Invalid data. Expected a dictionary, but got list.]" {
		t.Fatalf("customer put list: %d %v", st, body)
	}
}

func TestSimulatorAuth(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	st, body, resp := raw(t, h, "", http.MethodGet, "/api/origin/DEMO/user/", "")
	if st != http.StatusUnauthorized || body["detail"] != "Authentication credentials were not provided." || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %v", st, body)
	}
	st, body, _ = raw(t, h, "made-up", http.MethodGet, "/api/origin/DEMO/user/", "")
	if st != http.StatusUnauthorized || body["detail"] != "Given token not valid for any token type" {
		t.Fatalf("bad token: %d %v", st, body)
	}
	tok := rawToken(t, h)
	if st, _, _ := raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/", ""); st != http.StatusOK {
		t.Fatalf("good token: %d", st)
	}
	h.simClock.Advance(300 * time.Second)
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/", "")
	if st != http.StatusUnauthorized || body["detail"] != "Given token not valid for any token type" {
		t.Fatalf("expired token: %d %v", st, body)
	}
	tok = rawToken(t, h)
	h.sim.RevokeTokens()
	if st, _, _ := raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/", ""); st != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", st)
	}

	for name, tt := range map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"wrong secret":  {url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {"x"}}, 401, "invalid_client"},
		"unknown":       {url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {DemoClientSecret}}, 401, "invalid_client"},
		"password":      {url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}, 400, "unsupported_grant_type"},
		"no grant type": {url.Values{"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}, 400, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.PostForm(h.srv.URL+"/realms/CloudSuite-test/protocol/openid-connect/token", tt.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tt.status || out["error"] != tt.code || out["error_description"] == "" {
				t.Fatalf("%d %v", resp.StatusCode, out)
			}
		})
	}
	if st, _, _ := raw(t, h, "", http.MethodGet, tokenPath, ""); st != http.StatusMethodNotAllowed {
		t.Fatalf("GET token: %d", st)
	}
	h.assertNoSecrets(t, fmt.Sprintf("%v %+v %#v %v %+v %#v", h.sim, h.sim, h.sim, DefaultSimConfig(), DefaultSimConfig(), DefaultSimConfig()))
	for _, r := range h.sim.Requests() {
		if strings.Contains(r.Query+r.Path, "made-up") {
			t.Fatalf("logged %+v", r)
		}
	}
}

func TestSimulatorListing(t *testing.T) {
	cfg := DefaultSimConfig()
	cfg.PageSize = 2
	h := newHarness(t, cfg)
	want := seedPaging(h)
	tok := rawToken(t, h)

	st, body, _ := raw(t, h, tok, http.MethodGet, "/API/origin/DEMO/user/?registration=new&inactive=true&page=2", "")
	if st != http.StatusOK || body["count"] != float64(5) {
		t.Fatalf("%d %v", st, body)
	}
	host := strings.TrimPrefix(h.srv.URL, "http://")
	if body["next"] != "http://"+host+"/API/origin/DEMO/user/?inactive=true&page=3&registration=new" ||
		body["previous"] != "http://"+host+"/API/origin/DEMO/user/?inactive=true&registration=new" {
		t.Fatalf("next %v previous %v", body["next"], body["previous"])
	}
	results := body["results"].([]any)
	if len(results) != 2 || results[0].(map[string]any)["key"] != want[2] {
		t.Fatalf("results %v", results)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?registration=new&inactive=true&page=3", "")
	if st != http.StatusOK || body["next"] != nil || len(body["results"].([]any)) != 1 {
		t.Fatalf("last page: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?registration=new&inactive=true&page=4", "")
	if st != http.StatusNotFound || body["detail"] != "Invalid page." {
		t.Fatalf("page 4: %d %v", st, body)
	}
	if st, _, _ := raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?page=0", ""); st != http.StatusNotFound {
		t.Fatalf("page 0: %d", st)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?page_size=100", "")
	if st != http.StatusOK || body["count"] != float64(7) || body["next"] != nil {
		t.Fatalf("page_size: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?inactive=false", "")
	if st != http.StatusOK || body["count"] != float64(1) {
		t.Fatalf("inactive=false: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?create_date__gte=2024-03-04T09:01:30", "")
	if st != http.StatusOK || body["count"] != float64(5) {
		t.Fatalf("create_date__gte: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/?create_date__gte=03/04/2024", "")
	if st != http.StatusBadRequest || fmt.Sprint(body["create_date__gte"]) != "[Enter a valid date/time.]" {
		t.Fatalf("bad date: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/"+want[0], "")
	if st != http.StatusOK || body["email"] != "new0@example.com" || body["create_date"] != "2024-03-04T09:00:00.507764" {
		t.Fatalf("get user: %d %v", st, body)
	}
	if st, _, _ := raw(t, h, tok, http.MethodGet, "/api/origin/DEMO/user/"+want[0]+"/", ""); st != http.StatusOK {
		t.Fatalf("get user with slash: %d", st)
	}
	st, body, _ = raw(t, h, tok, http.MethodGet, "/api/origin/NOPE/user/", "")
	if st != http.StatusNotFound || body["detail"] != "Not found." {
		t.Fatalf("unknown origin: %d %v", st, body)
	}
	st, body, resp := raw(t, h, tok, http.MethodDelete, "/api/origin/DEMO/user/"+want[0], "")
	if st != http.StatusMethodNotAllowed || body["detail"] != `Method "DELETE" not allowed.` || resp.Header.Get("Allow") != "GET, PATCH" {
		t.Fatalf("delete: %d %v", st, body)
	}
	if st, _, _ := raw(t, h, tok, http.MethodGet, "/api/nothing/here", ""); st != http.StatusNotFound {
		t.Fatalf("unknown route: %d", st)
	}
	big := `{"first_name":"` + strings.Repeat("x", maxSimBody) + `"}`
	if st, _, _ := raw(t, h, tok, http.MethodPatch, "/api/origin/DEMO/user/"+want[0], big); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", st)
	}
	st, body, _ = raw(t, h, tok, http.MethodPatch, "/api/origin/DEMO/user/"+want[0], `{"authorised_customers":"C1","active":"maybe"}`)
	if st != http.StatusBadRequest || body["authorised_customers"] == nil || fmt.Sprint(body["active"]) != "[Must be a valid boolean.]" {
		t.Fatalf("bad patch: %d %v", st, body)
	}
	st, body, _ = raw(t, h, tok, http.MethodPatch, "/api/origin/DEMO/user/"+want[0], `{"first_name":"Piet","id":1,"create_date":"2000-01-01"}`)
	if st != http.StatusOK || body["first_name"] != "Piet" || body["email"] != "new0@example.com" || body["create_date"] != "2024-03-04T09:00:00.507764" {
		t.Fatalf("patch: %d %v", st, body)
	}
}

func TestSimulatorAdmin(t *testing.T) {
	h := newHarness(t, DefaultSimConfig())
	resp, err := http.Post(h.srv.URL+"/_sim/origins/SHOP/users", "application/json", strings.NewReader(
		`{"email":"buyer@example.com","first_name":"B","create_date":"2023-01-18T09:23:02.507764","profiles":[{"id":2109,"name":"Cloudsuite","city":"Houten"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || u["create_date"] != "2023-01-18T09:23:02.507764" || fmt.Sprint(u["user_profiles"]) != "[2109]" {
		t.Fatalf("seed: %d %v", resp.StatusCode, u)
	}
	p, ok := h.sim.Profile(2109)
	if !ok || p["city"] != "Houten" || p["user"] != int64(u["id"].(float64)) || p["id"] != int64(2109) {
		t.Fatalf("profile %v", p)
	}
	if users := h.sim.Users("SHOP"); len(users) != 1 || users[0]["email"] != "buyer@example.com" {
		t.Fatalf("users %v", users)
	}
	resp, err = http.Post(h.srv.URL+"/_sim/origins/SHOP/customers", "application/json", strings.NewReader(`{"key":"C9","name":"Existing BV"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c, ok := h.sim.Customer("SHOP", "C9"); resp.StatusCode != http.StatusCreated || !ok || c["name"] != "Existing BV" {
		t.Fatalf("seed customer: %d %v", resp.StatusCode, c)
	}
	h.sim.AddCustomer(DemoOrigin, "C1", map[string]any{"name": "Go BV"})
	if c, ok := h.sim.Customer(DemoOrigin, "C1"); !ok || c["key"] != "C1" || h.sim.Customers(DemoOrigin) != 1 {
		t.Fatalf("AddCustomer: %v", c)
	}
	for _, path := range []string{"/_sim/", "/_sim/origins", "/_sim/origins/SHOP/users", "/_sim/origins/SHOP/customers", "/_sim/activations", "/_sim/requests", "/_sim/faults"} {
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err = http.Post(h.srv.URL+"/_sim/faults", "application/json", strings.NewReader(`{"failNext":1,"status":500}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.sim.Faults().PendingFailures() != 1 {
		t.Fatal("/_sim/faults did not arm FailNext")
	}
	resp, err = http.Post(h.srv.URL+"/_sim/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(h.sim.Users("SHOP")) != 0 || h.sim.Faults().PendingFailures() != 0 {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if _, ok := h.sim.Profile(2109); ok {
		t.Fatal("reset kept a profile")
	}
	// The configured origin survives a reset; the seeded one does not.
	if _, err := h.client.NewUsers(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if len(h.sim.Requests()) == 0 {
		t.Fatal("requests not logged")
	}
	for _, r := range h.sim.Requests() {
		if strings.HasPrefix(r.Path, "/_sim") {
			t.Fatalf("admin request logged: %+v", r)
		}
	}
}
