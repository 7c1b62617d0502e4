package resamania

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Raw HTTP against the simulator: status codes, headers and body shapes.

type rawReply struct {
	status int
	header http.Header
	body   map[string]any
	text   string
}

// rawCall sends one request to the harness's server; headers "-" entries
// remove the defaults (API key, bearer, club).
func (h *harness) rawCall(t *testing.T, method, path, body string, headers map[string]string) rawReply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if v == "-" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawReply{status: resp.StatusCode, header: resp.Header, text: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

// rawToken gets a token of grant (with extra form fields) from the simulator.
func (h *harness) rawToken(t *testing.T, grant string, extra url.Values) string {
	t.Helper()
	form := url.Values{"grant_type": {grant}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"}}
	for k, v := range extra {
		form[k] = v
	}
	r := h.rawCall(t, "POST", env+"/demoapi/oauth/v2/token", form.Encode(),
		map[string]string{"X-Gravitee-Api-Key": "demo-api-key", "Content-Type": "application/x-www-form-urlencoded"})
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.text)
	}
	return r.body["access_token"].(string)
}

// api returns the default headers of an API call with token.
func api(token string) map[string]string {
	return map[string]string{"X-Gravitee-Api-Key": "demo-api-key", "Authorization": "Bearer " + token,
		"x-user-club-id": paris.ClubID, "x-user-network-node-id": paris.NetworkNodeID, "Content-Type": "application/json"}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestSimTokenEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	form := func(kv ...string) string {
		v := url.Values{"client_id": {"demo-client"}, "client_secret": {"demo-secret"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	hdr := map[string]string{"X-Gravitee-Api-Key": "demo-api-key", "Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		error  string // OAuth "error", or "" for a token
	}{
		{"client credentials", "/demoapi/oauth/v2/token", form("grant_type", "client_credentials"), hdr, 200, ""},
		{"environment-level path", "/oauth/v2/token", form("grant_type", "client_credentials"), hdr, 200, ""},
		{"contact grant", "/demoapi/oauth/v2/token", form("grant_type", GrantContactCredentials, "email", justine), hdr, 200, ""},
		{"club grant", "/demoapi/oauth/v2/token", form("grant_type", GrantClubCredentials, "clubId", lyon.ClubID), hdr, 200, ""},
		{"wrong secret", "/demoapi/oauth/v2/token", form("grant_type", "client_credentials", "client_secret", "x"), hdr, 401, "invalid_client"},
		{"no grant", "/demoapi/oauth/v2/token", form(), hdr, 400, "invalid_request"},
		{"unknown grant", "/demoapi/oauth/v2/token", form("grant_type", "password"), hdr, 400, "unsupported_grant_type"},
		{"contact grant, unknown email", "/demoapi/oauth/v2/token", form("grant_type", GrantContactCredentials, "email", "x@example.com"), hdr, 400, "invalid_grant"},
		{"contact grant, no email", "/demoapi/oauth/v2/token", form("grant_type", GrantContactCredentials), hdr, 400, "invalid_request"},
		{"club grant, bare id", "/demoapi/oauth/v2/token", form("grant_type", GrantClubCredentials, "clubId", "1358"), hdr, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, "POST", env+tt.path, tt.body, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			if tt.error != "" {
				if r.body["error"] != tt.error || r.body["error_description"] == "" {
					t.Fatalf("body %s, want error %s", r.text, tt.error)
				}
				return
			}
			for _, k := range []string{"access_token", "expires_in", "token_type", "scope", "refresh_token"} {
				if _, ok := r.body[k]; !ok {
					t.Fatalf("token reply lacks %s: %s", k, r.text)
				}
			}
			if r.body["token_type"] != "bearer" || r.body["expires_in"] != 3600.0 {
				t.Fatalf("token reply %s", r.text)
			}
		})
	}

	t.Run("refresh token", func(t *testing.T) {
		r := h.rawCall(t, "POST", env+"/demoapi/oauth/v2/token", form("grant_type", "client_credentials"), hdr)
		rt := r.body["refresh_token"].(string)
		r = h.rawCall(t, "POST", env+"/demoapi/oauth/v2/token", form("grant_type", "refresh_token", "refresh_token", rt), hdr)
		if r.status != 200 {
			t.Fatalf("refresh: %d %s", r.status, r.text)
		}
		r = h.rawCall(t, "POST", env+"/demoapi/oauth/v2/token", form("grant_type", "refresh_token", "refresh_token", rt), hdr)
		if r.status != 400 {
			t.Fatalf("reused refresh token: %d", r.status)
		}
	})
}

func TestSimGateway(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		body    map[string]any // expected subset
	}{
		{"no API key", "GET", env + "/demoapi/contacts?email=x", with(api(tok), "X-Gravitee-Api-Key", "-"), 401,
			map[string]any{"message": "Unauthorized", "http_status_code": 401.0}},
		{"wrong API key", "GET", env + "/demoapi/contacts?email=x", with(api(tok), "X-Gravitee-Api-Key", "nope"), 401,
			map[string]any{"message": "Unauthorized"}},
		{"unknown clientToken", "GET", env + "/other/contacts", api(tok), 404, map[string]any{"http_status_code": 404.0}},
		{"unknown route", "GET", env + "/demoapi/nothing", api(tok), 404, map[string]any{"@type": "hydra:Error"}},
		{"wrong method", "DELETE", env + "/demoapi/contacts", api(tok), 405, map[string]any{"@type": "hydra:Error"}},
		{"no bearer", "GET", env + "/demoapi/contacts?email=x", with(api(tok), "Authorization", "-"), 401,
			map[string]any{"error": "access_denied"}},
		{"unknown bearer", "GET", env + "/demoapi/contacts?email=x", with(api(tok), "Authorization", "Bearer nope"), 401,
			map[string]any{"error": "invalid_grant"}},
		{"ok", "GET", env + "/demoapi/contacts?email=x", api(tok), 200, map[string]any{"@type": "hydra:Collection", "hydra:totalItems": 0.0}},
		{"no env prefix", "GET", "/demoapi/contacts?email=x", api(tok), 200, map[string]any{"@type": "hydra:Collection"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, tt.method, tt.path, "", tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			for k, v := range tt.body {
				if r.body[k] != v {
					t.Fatalf("body[%s] = %v, want %v: %s", k, r.body[k], v, r.text)
				}
			}
		})
	}
}

func TestSimRateLimitHeaders(t *testing.T) {
	clock := newFakeClock()
	h := newHarness(t, func(c *SimConfig) { c.Clock = clock.Now; c.RateLimit = RateLimit{PerMinute: 100, SpikeArrest: 2} })
	tok := h.rawToken(t, GrantClientCredentials, nil) // 1 of the spike window
	r := h.rawCall(t, "GET", env+"/demoapi/contacts?email=x", "", api(tok))
	if r.status != 200 || r.header.Get("X-Rate-Limit-Limit") != "100" || r.header.Get("X-Rate-Limit-Remaining") != "98" ||
		r.header.Get("X-Spike-Arrest-Remaining") != "0" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	r = h.rawCall(t, "GET", env+"/demoapi/contacts?email=x", "", api(tok))
	if r.status != 429 || r.header.Get("Retry-After") != "1" || !strings.Contains(r.body["message"].(string), "Spike") {
		t.Fatalf("spike: %d %v %s", r.status, r.header, r.text)
	}
	reset, _ := strconv.ParseInt(r.header.Get("X-Spike-Arrest-Reset"), 10, 64)
	if d := time.UnixMilli(reset).Sub(clock.Now()); d <= 0 || d > 100*time.Millisecond {
		t.Fatalf("X-Spike-Arrest-Reset %d is %v away", reset, d)
	}
	clock.Advance(100 * time.Millisecond)
	if r = h.rawCall(t, "GET", env+"/demoapi/contacts?email=x", "", api(tok)); r.status != 200 {
		t.Fatalf("next window: %d", r.status)
	}
	reset, _ = strconv.ParseInt(r.header.Get("X-Rate-Limit-Reset"), 10, 64)
	if d := time.UnixMilli(reset).Sub(clock.Now()); d <= 0 || d > time.Minute {
		t.Fatalf("X-Rate-Limit-Reset %d is %v away", reset, d)
	}
}

func TestSimFindByEmailEncoding(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	tests := []struct {
		query string
		want  float64
	}{
		{"email=john%2Btest%40example.com", 1},
		{"email=john+test@example.com", 0}, // "+" decodes to a space
		{"email=JOHN%2BTEST%40EXAMPLE.COM", 1},
		{"email=", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := h.rawCall(t, "GET", env+"/demoapi/contacts?"+tt.query, "", api(tok))
			if r.status != 200 || r.body["hydra:totalItems"] != tt.want {
				t.Fatalf("%d %s", r.status, r.text)
			}
			if tt.want == 1 {
				m := r.body["hydra:member"].([]any)[0].(map[string]any)
				if m["@type"] != "http://schema.org/Person" || r.body["@context"] != "/demoapi/contexts/Contact" || m["gender"] != nil {
					t.Fatalf("member %v", m)
				}
			}
		})
	}
}

func TestSimNetworkSearchLimitedView(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	r := h.rawCall(t, "GET", env+"/demoapi/network/contact_search?email="+url.QueryEscape(justine), "", api(tok))
	if r.status != 200 || r.body["hydra:totalItems"] != 1.0 {
		t.Fatalf("%d %s", r.status, r.text)
	}
	m := r.body["hydra:member"].([]any)[0].(map[string]any)
	if m["partialPhoneNumber"] != "******1615" || m["clubId"] != lyon.ClubID {
		t.Fatalf("member %v", m)
	}
	for _, k := range []string{"email", "address", "mobile"} {
		if _, ok := m[k]; ok {
			t.Fatalf("the limited view shows %s: %v", k, m)
		}
	}
	ctok := h.rawToken(t, GrantContactCredentials, url.Values{"email": {justine}})
	r = h.rawCall(t, "GET", env+"/demoapi/network/contact_search?email=x", "", api(ctok))
	if r.status != 403 || r.body["hydra:description"] != CodeUnauthorizedEndpoint || r.body["@type"] != "hydra:Error" {
		t.Fatalf("contact token: %d %s", r.status, r.text)
	}
}

func TestSimCreateContact(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	valid := `{"familyName":"DEV","givenName":"Test","birthDate":"2000-01-01","email":"a@example.com"}`
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int
		check   func(t *testing.T, r rawReply)
	}{
		{"created", valid, api(tok), 201, func(t *testing.T, r rawReply) {
			if r.body["@type"] != "http://schema.org/Person" || r.body["state"] != "prospect" || r.body["clubId"] != paris.ClubID ||
				r.header.Get("Location") != r.body["@id"] || r.body["number"] != "C"+strings.TrimPrefix(r.body["@id"].(string), "/demoapi/contacts/") {
				t.Fatalf("%s", r.text)
			}
		}},
		{"same email again", valid, api(tok), 400, func(t *testing.T, r rawReply) {
			want := map[string]any{"@context": "/contexts/Error", "@type": "hydra:Error", "hydra:title": "An error occurred",
				"hydra:description": CodeEmailAlreadyUsed}
			if len(r.body) != len(want) {
				t.Fatalf("%s", r.text)
			}
			for k, v := range want {
				if r.body[k] != v {
					t.Fatalf("%s", r.text)
				}
			}
		}},
		{"violations", `{"email":"not-an-email","familyName":null,"givenName":"","birthDate":"01/02/2000","state":"client"}`, api(tok), 400,
			func(t *testing.T, r rawReply) {
				if r.body["@type"] != "ConstraintViolationList" {
					t.Fatalf("%s", r.text)
				}
				got := []string{}
				for _, v := range r.body["violations"].([]any) {
					m := v.(map[string]any)
					got = append(got, m["propertyPath"].(string)+":"+m["message"].(string))
				}
				want := "familyName:required givenName:required birthDate:This value is not a valid date. " +
					"email:This value is not a valid email address. state:The value you selected is not a valid choice."
				if strings.Join(got, " ") != want {
					t.Fatalf("violations %q", got)
				}
			}},
		{"bare club id", `{"clubId":"1357"}`, api(tok), 404, nil},
		{"bare source id", `{"sourceId":"12"}`, api(tok), 404, nil},
		{"no club anywhere", `{"familyName":"A","givenName":"B","birthDate":"2000-01-01","email":"b@example.com"}`,
			with(api(tok), "x-user-club-id", "-", "x-user-network-node-id", network.NetworkNodeID), 400, func(t *testing.T, r rawReply) {
				if !strings.Contains(r.text, `"propertyPath":"clubId"`) {
					t.Fatalf("%s", r.text)
				}
			}},
		{"syntax error", `{`, api(tok), 400, nil},
		{"wrong type", `{"email":5}`, api(tok), 400, func(t *testing.T, r rawReply) {
			if !strings.Contains(r.body["hydra:description"].(string), `"email"`) {
				t.Fatalf("%s", r.text)
			}
		}},
		{"not JSON", valid, with(api(tok), "Content-Type", "text/plain"), 415, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, "POST", env+"/demoapi/contacts", tt.body, tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestSimGetContactAndDataSharing(t *testing.T) {
	h := newHarness(t, func(c *SimConfig) { c.Accounts[0].Clubs[0].NoSharing = true }) // Paris
	tok := h.rawToken(t, GrantClientCredentials, nil)
	var justineID string
	for _, c := range h.sim.Contacts("demoapi") {
		if c.Email == justine {
			justineID = c.ID
		}
	}
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		desc    string
	}{
		{"from her club", justineID, with(api(tok), "x-user-club-id", lyon.ClubID, "x-user-network-node-id", lyon.NetworkNodeID), 200, ""},
		{"from the network", justineID, with(api(tok), "x-user-club-id", "-", "x-user-network-node-id", network.NetworkNodeID), 200, ""},
		{"from a club without sharing", justineID, api(tok), 400, `La ressource "` + justineID + `" n'existe pas.`},
		{"unknown", "/demoapi/contacts/1", api(tok), 404, `Item not found for "/demoapi/contacts/1".`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, "GET", env+tt.path, "", tt.headers)
			if r.status != tt.status || (tt.desc != "" && r.body["hydra:description"] != tt.desc) {
				t.Fatalf("%d %s", r.status, r.text)
			}
		})
	}
	ctok := h.rawToken(t, GrantContactCredentials, url.Values{"email": {justine}})
	if r := h.rawCall(t, "GET", env+justineID, "", with(api(ctok), "x-user-club-id", lyon.ClubID, "x-user-network-node-id", "-")); r.status != 200 {
		t.Fatalf("a contact reads itself: %d %s", r.status, r.text)
	}
	other := h.sim.Contacts("demoapi")[1].ID
	if r := h.rawCall(t, "GET", env+other, "", api(ctok)); r.status != 403 {
		t.Fatalf("a contact reads another: %d %s", r.status, r.text)
	}
}

func TestSimPagination(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 5 {
		h.sim.AddContact("demoapi", Contact{Email: "p" + strconv.Itoa(i) + "@example.com", ClubID: paris.ClubID})
	}
	tok := h.rawToken(t, GrantClientCredentials, nil)
	r := h.rawCall(t, "GET", env+"/demoapi/contacts?itemsPerPage=2&page=3", "", api(tok))
	view, _ := r.body["hydra:view"].(map[string]any)
	if r.status != 200 || r.body["hydra:totalItems"] != 6.0 || len(r.body["hydra:member"].([]any)) != 2 || view == nil ||
		view["hydra:next"] != nil || view["hydra:previous"] != "/demoapi/contacts?itemsPerPage=2&page=2" {
		t.Fatalf("%d %s", r.status, r.text)
	}
	if r := h.rawCall(t, "GET", env+"/demoapi/contacts?page=0", "", api(tok)); r.status != 400 {
		t.Fatalf("page 0: %d", r.status)
	}
}

func TestSimAdmin(t *testing.T) {
	h := newHarness(t, nil)
	r := h.rawCall(t, "POST", "/_sim/contacts", `{"email":"seed@example.com","state":"old_client","clubId":"/demoapi/clubs/1359"}`, nil)
	if r.status != 201 || r.body["state"] != "old_client" || !strings.HasPrefix(r.body["@id"].(string), "/demoapi/contacts/") {
		t.Fatalf("seed: %d %s", r.status, r.text)
	}
	r = h.rawCall(t, "GET", "/_sim/contacts?clientToken=demoapi", "", nil)
	if r.status != 200 || !strings.Contains(r.text, "seed@example.com") {
		t.Fatalf("contacts: %d %s", r.status, r.text)
	}
	if r = h.rawCall(t, "GET", "/_sim/contacts?clientToken=nope", "", nil); r.status != 404 {
		t.Fatalf("unknown account: %d", r.status)
	}

	if r = h.rawCall(t, "PUT", "/_sim/faults", `{"errorRate":1}`, nil); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.text)
	}
	if r = h.rawCall(t, "GET", env+"/demoapi/contacts", "", nil); r.status != 503 {
		t.Fatalf("faulted API: %d", r.status)
	}
	if r = h.rawCall(t, "GET", "/_sim/accounts", "", nil); r.status != 200 || strings.Contains(r.text, "demo-secret") ||
		!strings.Contains(r.text, `"/demoapi/clubs/1357"`) {
		t.Fatalf("accounts (never faulted, no secrets): %d %s", r.status, r.text)
	}
	if r = h.rawCall(t, "DELETE", "/_sim/faults", "", nil); r.status != 200 {
		t.Fatalf("reset faults: %d", r.status)
	}

	r = h.rawCall(t, "GET", "/_sim/requests?route=/contacts", "", nil)
	var reqs []Request
	if err := json.Unmarshal([]byte(r.text), &reqs); err != nil || len(reqs) != 1 || reqs[0].Status != 503 || reqs[0].ClientToken != "demoapi" {
		t.Fatalf("requests: %s %v", r.text, err)
	}
	if r = h.rawCall(t, "DELETE", "/_sim/requests", "", nil); r.status != 204 || len(h.sim.Requests()) != 0 {
		t.Fatalf("reset requests: %d", r.status)
	}
	tok := h.rawToken(t, GrantClientCredentials, nil)
	if r = h.rawCall(t, "DELETE", "/_sim/tokens", "", nil); r.status != 204 {
		t.Fatalf("revoke: %d", r.status)
	}
	if r = h.rawCall(t, "GET", env+"/demoapi/contacts?email=x", "", api(tok)); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	if r = h.rawCall(t, "GET", "/_sim/", "", nil); r.status != 200 {
		t.Fatalf("index: %d", r.status)
	}
	if r = h.rawCall(t, "GET", env+"/_sim/faults", "", nil); r.status != 200 || r.body["latency"] != "0s" {
		t.Fatalf("controls under the environment prefix: %d %s", r.status, r.text)
	}
}

func TestSimRequestLogIsBounded(t *testing.T) {
	h := newHarness(t, func(c *SimConfig) { c.MaxRequestLog = 3 })
	for i := range 5 {
		h.rawCall(t, "GET", "/nowhere/"+strconv.Itoa(i), "", nil)
	}
	reqs := h.sim.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/nowhere/2" || reqs[2].Path != "/nowhere/4" || reqs[2].Status != 404 {
		t.Fatalf("log = %+v", reqs)
	}
	for range 4 {
		h.rawCall(t, "GET", env+"/demoapi/contacts", "", nil)
	}
	if n := h.sim.CountResponses("GET", "/contacts", 401); n != 4 {
		t.Fatalf("counted %d, want 4 beyond the log's bound", n)
	}
	if n := h.sim.CountRequests("", ""); n != 4 {
		t.Fatalf("counted %d routed requests, want 4 (unrouted ones are not counted)", n)
	}
}

func TestSimAddContact(t *testing.T) {
	sim := NewSimulator(DefaultSimConfig())
	c := sim.AddContact("demoapi", Contact{ID: "/demoapi/contacts/10296819", Email: "x@example.com", Number: "ZM14314719"})
	if c.ID != "/demoapi/contacts/10296819" || c.Number != "ZM14314719" || c.State != StateProspect || c.ClubID != "/demoapi/clubs/1357" {
		t.Fatalf("seeded %+v", c)
	}
	if d := sim.AddContact("demoapi", Contact{ID: c.ID}); d.ID == c.ID {
		t.Fatal("a used id was given twice")
	}
	if z := sim.AddContact("nope", Contact{}); z.ID != "" {
		t.Fatalf("unknown account: %+v", z)
	}
}

func TestSimConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*SimConfig)
		ok   bool
	}{
		{"default", func(*SimConfig) {}, true},
		{"no accounts", func(c *SimConfig) { c.Accounts = nil }, true},
		{"no API key", func(c *SimConfig) { c.Accounts[0].APIKey = "" }, false},
		{"same clientToken twice", func(c *SimConfig) {
			a := c.Accounts[0]
			a.APIKey = "other"
			c.Accounts = append(c.Accounts, a)
		}, false},
		{"same API key twice", func(c *SimConfig) {
			a := c.Accounts[0]
			a.ClientToken = "other"
			c.Accounts = append(c.Accounts, a)
		}, false},
		{"repeated club", func(c *SimConfig) { c.Accounts[0].Clubs[1].ID = c.Accounts[0].Clubs[0].ID }, false},
		{"sales", func(c *SimConfig) { c.Accounts[0].Sales = []SimSale{{ID: 33}, {}, {}} }, true},
		{"negative sale id", func(c *SimConfig) { c.Accounts[0].Sales = []SimSale{{ID: -1}} }, false},
		{"repeated sale id", func(c *SimConfig) { c.Accounts[0].Sales = []SimSale{{ID: 33}, {ID: 33}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultSimConfig()
			tt.edit(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestSimMigrationRequestRaw(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	justineID := seededID(t, h, justine)
	noMobile := h.sim.AddContact("demoapi", Contact{Email: "nomobile@example.com", ClubID: lyon.ClubID}).ID
	const path = env + "/demoapi/contact_migration_requests"
	body := func(contact, club string) string {
		return `{"contactId":"` + contact + `","clubId":"` + club + `","disableNetwork":true}`
	}
	ctok := h.rawToken(t, GrantContactCredentials, url.Values{"email": {justine}})
	tests := []struct {
		name    string
		method  string
		body    string
		headers map[string]string
		status  int
		check   func(*testing.T, rawReply)
	}{
		{"wrong method", "GET", "", api(tok), 405, func(t *testing.T, r rawReply) {
			if r.header.Get("Allow") != "POST" {
				t.Fatalf("Allow %q", r.header.Get("Allow"))
			}
		}},
		{"contact token", "POST", body(justineID, paris.ClubID), api(ctok), 403, nil},
		{"no scope", "POST", body(justineID, paris.ClubID), with(api(tok), "x-user-club-id", "-", "x-user-network-node-id", "-"), 404, nil},
		{"missing fields", "POST", `{"disableNetwork":true}`, api(tok), 400, func(t *testing.T, r rawReply) {
			if !strings.Contains(r.text, `"propertyPath":"contactId"`) || !strings.Contains(r.text, `"propertyPath":"clubId"`) {
				t.Fatalf("%s", r.text)
			}
		}},
		{"bare contact id", "POST", body(strings.TrimPrefix(justineID, "/demoapi/contacts/"), paris.ClubID), api(tok), 404, nil},
		{"bare club id", "POST", body(justineID, "1357"), api(tok), 404, nil},
		{"wrong content type", "POST", body(justineID, paris.ClubID), with(api(tok), "Content-Type", "text/plain"), 415, nil},
		{"no mobile to send the code to", "POST", body(noMobile, paris.ClubID), api(tok), 400, func(t *testing.T, r rawReply) {
			if !strings.Contains(r.text, `"propertyPath":"mobile"`) {
				t.Fatalf("%s", r.text)
			}
		}},
		{"created", "POST", body(justineID, paris.ClubID), api(tok), 201, func(t *testing.T, r rawReply) {
			id, _ := r.body["@id"].(string)
			if r.body["@type"] != "SignatureRequest" || r.body["@context"] != "/demoapi/contexts/SignatureRequest" ||
				r.body["state"] != "created" || r.body["resultTargetId"] != nil || !strings.HasPrefix(id, "/demoapi/signature_requests/") {
				t.Fatalf("%s", r.text)
			}
			c, ok := h.sim.LastCode(id)
			if !ok || strings.Contains(r.text, c) || strings.Contains(r.text, `"code"`) {
				t.Fatalf("the reply shows the code (%s, %v): %s", c, ok, r.text)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, tt.method, path, tt.body, tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	if n := len(h.sim.SMS()); n != 1 {
		t.Fatalf("%d SMS sent, want 1", n)
	}
}

func TestSimTransitionsRaw(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.rawToken(t, GrantClientCredentials, nil)
	r := h.rawCall(t, "POST", env+"/demoapi/contact_migration_requests",
		`{"contactId":"`+seededID(t, h, justine)+`","clubId":"`+paris.ClubID+`"}`, api(tok))
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.text)
	}
	iri := r.body["@id"].(string)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		desc   string // hydra:description, if any
	}{
		{"id not a number", "/demoapi/signature_requests/abc/transitions", `{"transition":"cancel"}`, 404, ""},
		{"IRI in the path", "/demoapi/signature_requests/" + iri + "/transitions", `{"transition":"cancel"}`, 404, ""},
		{"unknown request", "/demoapi/signature_requests/1/transitions", `{"transition":"cancel"}`, 404, `Item not found for "/demoapi/signature_requests/1".`},
		{"no transition", iri + "/transitions", `{}`, 400, "transition: required"},
		{"unknown transition", iri + "/transitions", `{"transition":"approve"}`, 400, "transition: The value you selected is not a valid choice."},
		{"code of the wrong type", iri + "/transitions", `{"transition":"validate","code":949875}`, 400, `The type of the "code" attribute must be "string", "number" given.`},
		{"wrong code", iri + "/transitions", `{"transition":"validate","code":"x"}`, 400, CodeInvalidCode},
		{"cancel", iri + "/transitions", `{"transition":"cancel","disableNetwork":true}`, 201, ""},
		{"cancel again", iri + "/transitions", `{"transition":"cancel"}`, 400, CodeSignatureNotPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, "POST", env+tt.path, tt.body, api(tok))
			if r.status != tt.status || (tt.desc != "" && r.body["hydra:description"] != tt.desc) {
				t.Fatalf("%d %s", r.status, r.text)
			}
		})
	}
	if n := h.sim.CountRequests("POST", "/signature_requests/{id}/transitions"); n != 8 {
		t.Fatalf("%d transitions logged under the route, want 8", n)
	}

	// The phone, over HTTP.
	r = h.rawCall(t, "GET", "/_sim/sms?signatureRequest="+url.QueryEscape(iri), "", nil)
	var sms []SMS
	if err := json.Unmarshal([]byte(r.text), &sms); err != nil || len(sms) != 1 || sms[0].SignatureRequestID != iri ||
		sms[0].To != "+33612341615" || len(sms[0].Code) != 6 {
		t.Fatalf("/_sim/sms: %s %v", r.text, err)
	}
	if r = h.rawCall(t, "GET", env+"/_sim/sms?signatureRequest=/demoapi/signature_requests/1", "", nil); r.status != 200 || strings.TrimSpace(r.text) != "[]" {
		t.Fatalf("/_sim/sms filtered: %d %s", r.status, r.text)
	}
}

func TestSimMigrateRaw(t *testing.T) {
	h := newHarness(t, nil)
	source := seededID(t, h, justine)
	temp := h.sim.AddContact("demoapi", Contact{Email: justine, State: StateTemp, ClubID: paris.ClubID})
	ctok := h.rawToken(t, GrantContactCredentials, url.Values{"email": {justine}})
	path := env + source + "/migrate"
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"wrong method", "POST", path, "{}", 405},
		{"id not a number", "PUT", env + "/demoapi/contacts/x/migrate", "{}", 404},
		{"missing fields", "PUT", path, "{}", 400},
		{"bare target", "PUT", path, `{"targetContactId":"2974001","targetClubId":"` + paris.ClubID + `"}`, 404},
		{"bare club", "PUT", path, `{"targetContactId":"` + temp.ID + `","targetClubId":"1357"}`, 404},
		{"migrated", "PUT", path, `{"targetContactId":"` + temp.ID + `","targetClubId":"` + paris.ClubID + `"}`, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, tt.method, tt.path, tt.body, with(api(ctok), "x-user-club-id", lyon.ClubID, "x-user-network-node-id", "-"))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			if r.status == 204 && r.text != "" {
				t.Fatalf("204 with a body: %q", r.text)
			}
		})
	}
	if n := h.sim.CountResponses("PUT", "/contacts/{id}/migrate", 204); n != 1 {
		t.Fatalf("logged %d migrations", n)
	}
}

func TestSimUpdateSaleContactRaw(t *testing.T) {
	justineIRI := ContactIRI("demoapi", firstContactID) // seeded first
	h := newHarness(t, func(c *SimConfig) {
		c.Accounts[0].Sales = []SimSale{{ID: 33, ContactID: justineIRI}, {ContactID: "/demoapi/contacts/1"}}
	})
	tok := h.rawToken(t, GrantClientCredentials, nil)
	sales := h.sim.Sales("demoapi")
	if len(sales) != 2 || sales[0] != (SimSaleState{ID: 33, ContactID: justineIRI, ContactNumber: "C2974000", ContactFamilyName: "Doe",
		ContactGivenName: "Justine"}) || sales[1].ID != 34 || sales[1].ContactFamilyName != "" {
		t.Fatalf("seeded sales = %+v", sales)
	}
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
	}{
		{"sale", "PUT", "/demoapi/sale/33/update_contact", api(tok), 204},
		{"sales", "PUT", "/demoapi/sales/33/update_contact", api(tok), 204},
		{"IRI in the path", "PUT", "/demoapi/sale//demoapi/sales/33/update_contact", api(tok), 404},
		{"id not a number", "PUT", "/demoapi/sale/x33/update_contact", api(tok), 404},
		{"unknown sale", "PUT", "/demoapi/sale/35/update_contact", api(tok), 404},
		{"sale of an unknown contact", "PUT", "/demoapi/sale/34/update_contact", api(tok), 404},
		{"wrong method", "POST", "/demoapi/sale/33/update_contact", api(tok), 405},
		{"no bearer", "PUT", "/demoapi/sale/33/update_contact", with(api(tok), "Authorization", "-"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.rawCall(t, tt.method, env+tt.path, "", tt.headers)
			if r.status != tt.status || (r.status == 204 && r.text != "") {
				t.Fatalf("%d %q, want %d", r.status, r.text, tt.status)
			}
		})
	}
	if h.sim.CountResponses("PUT", "/sale/{id}/update_contact", 204) != 1 || h.sim.CountResponses("PUT", "/sales/{id}/update_contact", 204) != 1 {
		t.Fatalf("log = %+v", h.sim.Requests())
	}

	r := h.rawCall(t, "POST", "/_sim/sales", `{"id":40,"contactId":"`+justineIRI+`"}`, nil)
	if r.status != 201 || r.body["id"] != 40.0 || r.body["contactGivenName"] != "Justine" {
		t.Fatalf("seed a sale: %d %s", r.status, r.text)
	}
	if r = h.rawCall(t, "GET", "/_sim/sales?clientToken=demoapi", "", nil); r.status != 200 || !strings.Contains(r.text, `"id":40`) {
		t.Fatalf("sales: %d %s", r.status, r.text)
	}
}
