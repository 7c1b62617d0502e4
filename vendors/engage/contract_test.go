package engage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

type harness struct {
	sim    *Simulator
	srv    *httptest.Server
	client *Client
}

func newHarness(t *testing.T, baseSuffix string) *harness {
	t.Helper()
	sim := NewSimulator(DefaultSimConfig())
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{BaseURL: srv.URL + baseSuffix, Username: DemoUsername, Password: secret.New(DemoPassword)},
		WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{sim: sim, srv: srv, client: c}
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

const email = "j.mcexample@example.com"

func TestGetContact(t *testing.T) {
	h := newHarness(t, "/api/rest/v19")
	ctx := context.Background()
	seeded := h.sim.AddContact(Contact{EmailAddress: email, Attributes: []Attribute{{"FirstName", "John"}}})
	got, err := h.client.GetContact(ctx, Identifier{Type: TypeEmail, Value: "J.McExample@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != seeded.ID || got.EmailAddress != email {
		t.Fatalf("got %+v, want %+v", got, seeded)
	}
	if v, _ := got.Attribute("FirstName"); v != "John" {
		t.Fatalf("FirstName = %q", v)
	}
	byID, err := h.client.GetContact(ctx, Identifier{Type: TypeID, Value: "1000001"})
	if err != nil || byID.ID != seeded.ID {
		t.Fatalf("by id: %+v, %v", byID, err)
	}

	_, err = h.client.GetContact(ctx, Identifier{Type: TypeEmail, Value: "missing@example.com"})
	if !errors.Is(err, vendors.ErrNotFound) {
		t.Fatalf("missing: err = %v, want ErrNotFound", err)
	}
	var ve *vendors.Error
	if errors.As(err, &ve) {
		t.Fatalf("missing gave a *vendors.Error: %v", err)
	}
	if n := h.sim.CountRequests(http.MethodPost, "/api/rest/v19/contact/get"); n != 3 {
		t.Fatalf("count = %d", n)
	}
	// The simulator answered 400 (not 404) for the missing contact.
	reqs := h.sim.Requests()
	if last := reqs[len(reqs)-1]; last.Status != http.StatusBadRequest {
		t.Fatalf("last request %+v, want 400", last)
	}
}

func TestCreateContact(t *testing.T) {
	h := newHarness(t, "/api/rest")
	ctx := context.Background()
	in := Contact{EmailAddress: email, Attributes: []Attribute{{"FirstName", "John"}, {"user.ISOCountryCode", "FR"}}}
	c, err := h.client.CreateContact(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || c.EmailAddress != email || len(c.Attributes) != 2 {
		t.Fatalf("created %+v", c)
	}
	_, err = h.client.CreateContact(ctx, Contact{EmailAddress: strings.ToUpper(email)})
	if !IsAlreadyExists(err) {
		t.Fatalf("existing: err = %v", err)
	}
	ve := vendorError(t, err, vendors.Permanent, CodeObjectAlreadyExists)
	if ve.Status != http.StatusBadRequest || ve.Op != OpCreateContact {
		t.Fatalf("existing: %+v", ve)
	}
	if strings.Contains(err.Error(), "example.com") {
		t.Fatalf("error echoes the e-mail: %v", err)
	}
	// The client refuses a contact without identifier before sending it.
	_, err = h.client.CreateContact(ctx, Contact{Attributes: []Attribute{{"FirstName", "x"}}})
	vendorError(t, err, vendors.Permanent, CodeInvalidArgument)
	if n := len(h.sim.Contacts()); n != 1 {
		t.Fatalf("contacts = %d", n)
	}
	if n := h.sim.CountRequests("", "/api/rest/v19/contact/create"); n != 2 {
		t.Fatalf("create count = %d", n)
	}
}

func TestUpdateContactMergesAttributes(t *testing.T) {
	h := newHarness(t, "/api/rest/v19/")
	ctx := context.Background()
	h.sim.AddContact(Contact{EmailAddress: email, Attributes: []Attribute{{"FirstName", "John"}, {"LastName", "mcexample"}}})
	id := Identifier{Type: TypeEmail, Value: email}
	c, err := h.client.UpdateContact(ctx, id, Contact{Attributes: []Attribute{{"LastName", "McExample"}, {"user.ISOCountryCode", "FR"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Attribute{{"FirstName", "John"}, {"LastName", "McExample"}, {"user.ISOCountryCode", "FR"}}
	if len(c.Attributes) != len(want) {
		t.Fatalf("attributes %+v", c.Attributes)
	}
	for i, a := range want {
		if c.Attributes[i] != a {
			t.Fatalf("attributes %+v, want %+v", c.Attributes, want)
		}
	}
	if got := h.sim.Contacts()[0]; len(got.Attributes) != 3 {
		t.Fatalf("stored %+v", got)
	}
	reqs := h.sim.Requests()
	last := reqs[len(reqs)-1]
	if last.Query != "identifierType=EMAIL" || strings.Contains(last.Query+last.Path, "example") {
		t.Fatalf("logged %+v", last)
	}

	_, err = h.client.UpdateContact(ctx, Identifier{Type: TypeEmail, Value: "nobody@example.com"}, Contact{})
	ve := vendorError(t, err, vendors.Permanent, CodeNoSuchObject)
	if !IsNoSuchObject(err) || errors.Is(err, vendors.ErrNotFound) || strings.Contains(ve.Error(), "nobody") {
		t.Fatalf("unknown: %v", err)
	}
}

func TestBaseURLVariants(t *testing.T) {
	for _, suffix := range []string{"", "/", "/api/rest", "/api/rest/", "/api/rest/v19", "/engage/api/rest/v19/"} {
		t.Run(suffix, func(t *testing.T) {
			h := newHarness(t, suffix)
			h.sim.AddContact(Contact{MobileNumber: "33505606709"})
			c, err := h.client.GetContact(context.Background(), Identifier{Type: TypeMobile, Value: "33505606709"})
			if suffix == "" || suffix == "/" {
				// No /api/rest: the simulator does not serve it.
				vendorError(t, err, vendors.Permanent, CodeInvalidRequest)
				return
			}
			if err != nil || c.MobileNumber != "33505606709" {
				t.Fatalf("%+v, %v", c, err)
			}
			if n := h.sim.CountRequests(http.MethodPost, strings.TrimSuffix(strings.TrimSuffix(suffix, "/"), "/v19")+"/v19/contact/get"); n != 1 {
				t.Fatalf("requests %+v", h.sim.Requests())
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	h := newHarness(t, "/api/rest")
	c, err := NewClient(Config{BaseURL: h.srv.URL + "/api/rest", Username: DemoUsername, Password: secret.New("wrong-password-xyz")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetContact(context.Background(), Identifier{Type: TypeEmail, Value: email})
	ve := vendorError(t, err, vendors.Permanent, CodePermissionDenied)
	if ve.Status != http.StatusForbidden || !vendors.IsPermanent(err) {
		t.Fatalf("%+v", ve)
	}
	if s := err.Error(); strings.Contains(s, "wrong-password") || strings.Contains(s, "example.com") {
		t.Fatalf("error leaks: %s", s)
	}
}

func TestFaults(t *testing.T) {
	h := newHarness(t, "/api/rest/v19")
	ctx := context.Background()
	id := Identifier{Type: TypeEmail, Value: email}

	h.sim.Faults().FailNext(1, 0)
	_, err := h.client.GetContact(ctx, id)
	ve := vendorError(t, err, vendors.Transient, CodeServerError)
	if ve.Status != http.StatusServiceUnavailable || !vendors.IsRetryable(err) {
		t.Fatalf("%+v", ve)
	}

	h.sim.Faults().FailNext(1, http.StatusTooManyRequests)
	_, err = h.client.CreateContact(ctx, Contact{EmailAddress: email})
	ve = vendorError(t, err, vendors.RateLimited, CodeRateLimited)
	if ve.RetryAfter != time.Second {
		t.Fatalf("RetryAfter = %v", ve.RetryAfter)
	}
	if len(h.sim.Contacts()) != 0 {
		t.Fatal("a rate-limited create was applied")
	}
	// Next call goes through.
	if _, err := h.client.CreateContact(ctx, Contact{EmailAddress: email}); err != nil {
		t.Fatal(err)
	}
}

func TestTransportErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, err := NewClient(Config{BaseURL: base, Username: "u", Password: secret.New("p")}, WithHTTPClient(&http.Client{Timeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateContact(context.Background(), Identifier{Type: TypeEmail, Value: email}, Contact{})
	vendorError(t, err, vendors.Transient, "")
	if strings.Contains(err.Error(), "example.com") {
		t.Fatalf("error leaks the identifier: %v", err)
	}
}

// rawPost sends body to the simulator with the demo credentials.
func rawPost(t *testing.T, h *harness, path, body string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewBufferString(body))
	req.SetBasicAuth(DemoUsername, DemoPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestSimulatorRawHTTP(t *testing.T) {
	h := newHarness(t, "/api/rest")
	h.sim.AddContact(Contact{EmailAddress: email})

	st, body := rawPost(t, h, "/api/rest/v19/contact/get", `{"type":"email","value":"`+email+`"}`)
	if st != http.StatusBadRequest || body["errorCode"] != CodeInvalidParameter || !strings.Contains(strings.ToLower(body["message"]), "cannot deserialize value") {
		t.Fatalf("lowercase type: %d %v", st, body)
	}
	st, body = rawPost(t, h, "/api/rest/contact/get", `{"type":"EMAIL","value":"x@example.com"}`)
	if st != http.StatusBadRequest || body["errorCode"] != CodeNoSuchObject || body["errorActor"] != "CLIENT" {
		t.Fatalf("missing: %d %v", st, body)
	}
	st, body = rawPost(t, h, "/api/rest/v19/contact/create", `{"attributes":[{"name":"FirstName","value":"x"}]}`)
	if st != http.StatusBadRequest || body["errorCode"] != CodeMissingParameter {
		t.Fatalf("create without identifier: %d %v", st, body)
	}
	st, body = rawPost(t, h, "/api/rest/v19/contact/update?identifierType=EMAIL", `{"attributes":[]}`)
	if st != http.StatusBadRequest || !strings.Contains(body["message"], "unifiedIdentifierName and identifierType are mandatory") {
		t.Fatalf("update without name: %d %v", st, body)
	}
	st, _ = rawPost(t, h, "/api/rest/v19/contact/update?unifiedIdentifierName="+email, `{}`)
	if st != http.StatusBadRequest {
		t.Fatalf("update without type: %d", st)
	}
	st, body = rawPost(t, h, "/api/rest/v19/contact/update?identifierType=email&unifiedIdentifierName="+email, `{}`)
	if st != http.StatusBadRequest || body["errorCode"] != CodeInvalidParameter {
		t.Fatalf("update lowercase type: %d %v", st, body)
	}

	// No credentials: 403 with an error body.
	resp, err := http.Post(h.srv.URL+"/api/rest/v19/contact/get", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no auth: %d", resp.StatusCode)
	}

	// Admin endpoints.
	resp, err = http.Get(h.srv.URL + "/_sim/contacts")
	if err != nil {
		t.Fatal(err)
	}
	var cs []Contact
	_ = json.NewDecoder(resp.Body).Decode(&cs)
	resp.Body.Close()
	if len(cs) != 1 || cs[0].EmailAddress != email {
		t.Fatalf("/_sim/contacts: %+v", cs)
	}
	resp, err = http.Get(h.srv.URL + "/_sim/requests?path=/api/rest/contact/get")
	if err != nil {
		t.Fatal(err)
	}
	var reqs []Request
	_ = json.NewDecoder(resp.Body).Decode(&reqs)
	resp.Body.Close()
	if len(reqs) != 1 || reqs[0].Status != http.StatusBadRequest {
		t.Fatalf("/_sim/requests: %+v", reqs)
	}
	resp, err = http.Post(h.srv.URL+"/_sim/faults", "application/json", strings.NewReader(`{"failNext":1,"status":500}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.sim.Faults().PendingFailures() != 1 {
		t.Fatal("/_sim/faults did not arm FailNext")
	}
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	h := newHarness(t, "/api/rest")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.client.CreateContact(context.Background(), Contact{EmailAddress: email})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !IsAlreadyExists(err):
			t.Fatal(err)
		}
	}
	if ok != 1 || len(h.sim.Contacts()) != 1 {
		t.Fatalf("ok = %d, contacts = %d", ok, len(h.sim.Contacts()))
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{BaseURL: "https://x.example.com/api/rest", Username: "u", Password: secret.New("p")}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for key, c := range map[string]Config{
		"baseURL":  {Username: "u", Password: secret.New("p")},
		"username": {BaseURL: good.BaseURL, Password: secret.New("p")},
		"password": {BaseURL: good.BaseURL, Username: "u"},
	} {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
	if err := (Config{BaseURL: "ftp://x", Username: "u", Password: secret.New("p")}).Validate(); err == nil {
		t.Error("ftp accepted")
	}
	if _, err := NewClient(good); err != nil {
		t.Fatal(err)
	}
	c, _ := NewClient(good)
	if c.base != "https://x.example.com/api/rest/v19" {
		t.Fatalf("base %q", c.base)
	}
	_, err := c.GetContact(context.Background(), Identifier{Type: "email", Value: email})
	vendorError(t, err, vendors.Permanent, CodeInvalidArgument)
}
