package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

var activateSubject = events.CommandSubject(events.CmdCloudSuiteActivate)

// withCloudSuitePoll polls the CloudSuite simulator's origin every
// interval.
func withCloudSuitePoll(interval time.Duration) envOption {
	return func(e *env, _ *config.Config, _ *resamania.SimConfig) { e.pollInterval = interval }
}

// csUser is a new inactive user with one profile, created at the given
// offset before now.
func csUser(key, email string, age time.Duration) cloudsuite.SimUser {
	return cloudsuite.SimUser{Key: key, Email: email, FirstName: "Ada", LastName: "Lovelace",
		CreateDate: time.Now().UTC().Add(-age),
		Profiles:   []map[string]any{{"name": "Analytical Engines BV", "city": "Houten", "vat": "NL822898044B01"}}}
}

func csKey(n int) string { return fmt.Sprintf("b3ea7d82-d1e1-420c-bd41-%012d", n) }

func csID(key string) string { return handlers.CloudSuiteRegistrationID(cloudsuite.DemoOrigin, key) }

// announced returns the user_registered events, by registrationId.
func announced(c *collector) map[string]int {
	n := map[string]int{}
	for _, r := range c.all() {
		if r.Event.Type == events.EvtCloudSuiteUserRegistered {
			n[r.Event.RegistrationID]++
		}
	}
	return n
}

func (e *env) waitAnnounced(keys ...string) {
	e.t.Helper()
	e.events.waitFor(e.t, fmt.Sprintf("%d users announced", len(keys)), 20*time.Second, func([]received) bool {
		got := announced(e.events)
		for _, k := range keys {
			if got[csID(k)] == 0 {
				return false
			}
		}
		return true
	})
}

func activate(id, userKey, customerKey, customer string) []byte {
	c := ""
	if customer != "" {
		c = `,"customer":` + customer
	}
	return []byte(fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","userKey":%q,"customerKey":%q%s}`, id, userKey, customerKey, c))
}

func TestCloudSuitePollerAnnouncesNewInactiveUsersOnceAcrossPagesAndRestarts(t *testing.T) {
	e := startEnv(t, withCloudSuitePoll(100*time.Millisecond), withCloudSuitePageSize(2))
	cs := e.sims.CloudSuite
	var keys []string
	for i := range 5 {
		keys = append(keys, cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(i), fmt.Sprintf("user%d@example.com", i), time.Duration(5-i)*time.Minute)))
	}
	// Not new, or active: never announced.
	active := csUser(csKey(90), "active@example.com", time.Minute)
	active.Active = true
	cs.AddUser(cloudsuite.DemoOrigin, active)
	old := csUser(csKey(91), "old@example.com", time.Minute)
	old.Registration = "done"
	cs.AddUser(cloudsuite.DemoOrigin, old)

	e.waitAnnounced(keys...)
	ev := e.events.of(csID(keys[0]))[0]
	var reg events.CloudSuiteUserRegistered
	mustUnmarshal(t, ev.Data, &reg)
	var profile map[string]any
	mustUnmarshal(t, reg.Profile, &profile)
	var user map[string]any
	mustUnmarshal(t, reg.User, &user)
	if reg.Origin != cloudsuite.DemoOrigin || reg.UserKey != keys[0] || reg.Email != "user0@example.com" ||
		profile["name"] != "Analytical Engines BV" || user["key"] != keys[0] || reg.Flow != handlers.FlowCloudSuiteRegistration {
		t.Errorf("user_registered = %s", ev.Data)
	}

	// The first poll read every page; the list answered pages of two.
	var pages int
	for _, r := range cs.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/user/") && strings.Contains(r.Query, "page=3") {
			pages++
		}
	}
	if pages == 0 {
		t.Errorf("no third page was read: %v", cs.Requests())
	}
	// Later polls ask for users created since the watermark.
	e.sims.CloudSuite.ResetRequests()
	waitUntil(t, "a poll with create_date__gte", 10*time.Second, func() bool {
		for _, r := range cs.Requests() {
			if strings.Contains(r.Query, "create_date__gte=") && strings.Contains(r.Query, "registration=new") && strings.Contains(r.Query, "inactive=true") {
				return true
			}
		}
		return false
	})

	// The flow waits for the user's activation.
	f, err := e.svc.Store().Flow(t.Context(), csID(keys[0]))
	if err != nil || f.Status != store.StatusWaiting || f.WaitingFor != handlers.WaitingForActivation {
		t.Fatalf("flow = %+v, %v", f, err)
	}

	// A restart, a new user, more polls: each user announced once.
	e.restart()
	keys = append(keys, cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(5), "user5@example.com", 0)))
	e.waitAnnounced(keys...)
	time.Sleep(500 * time.Millisecond) // a few more polls
	got := announced(e.events)
	if len(got) != len(keys) {
		t.Errorf("announced %d users, want %d: %v", len(got), len(keys), got)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s announced %d times", id, n)
		}
	}
	if n := cs.CountRequests("GET", "/api/userprofile/"+fmt.Sprint(profileID(t, e, keys[0]))); n > 1 {
		t.Errorf("the profile of a known user was read %d times", n)
	}
}

func profileID(t *testing.T, e *env, key string) int64 {
	var u struct {
		Profiles []int64 `json:"user_profiles"`
	}
	simUser(t, e, key, &u)
	if len(u.Profiles) == 0 {
		t.Fatalf("user %s has no profile", key)
	}
	return u.Profiles[0]
}

// simUser decodes the simulator's user into v.
func simUser(t *testing.T, e *env, key string, v any) {
	t.Helper()
	u, ok := e.sims.CloudSuite.User(cloudsuite.DemoOrigin, key)
	if !ok {
		t.Fatalf("no user %s", key)
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, b, v)
}

func TestCloudSuiteActivationOfAnAnnouncedUserCreatesTheCustomerAndTriggersTheEmail(t *testing.T) {
	e := startEnv(t, withCloudSuitePoll(100*time.Millisecond))
	cs := e.sims.CloudSuite
	key := cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(1), "reviewed@example.com", time.Minute))
	e.waitAnnounced(key)
	id := csID(key)
	publish(t, e.js, activateSubject, "", activate(id, key, "CUST-1", `{"name":"Analytical Engines BV","city":"Houten"}`))
	evs := e.terminal(id)
	if got := types(evs); !slices.Equal(got, []string{"cloudsuite.user_registered", "cloudsuite.user_activated", "completed"}) {
		t.Fatalf("events = %v (%s)", got, evs[len(evs)-1].Data)
	}
	if r := evs[2].Event.Result; r["customerKey"] != "CUST-1" || r["customerCreated"] != true || r["userKey"] != key {
		t.Errorf("result = %v", r)
	}
	c, ok := cs.Customer(cloudsuite.DemoOrigin, "CUST-1")
	if !ok || c["name"] != "Analytical Engines BV" {
		t.Errorf("customer = %v, %v", c, ok)
	}
	var u struct {
		Customers    []string `json:"authorised_customers"`
		Registration string   `json:"registration"`
		Active       bool     `json:"active"`
		Email        string   `json:"email"`
	}
	simUser(t, e, key, &u)
	if !slices.Equal(u.Customers, []string{"CUST-1"}) || u.Registration != "new" || u.Active || u.Email != "reviewed@example.com" {
		t.Errorf("user after activation = %+v", u)
	}
	if n := cs.ActivationEmails(key); n != 1 {
		t.Errorf("activation e-mails = %d, want 1", n)
	}
	if put, patch := cs.CountRequests("PUT", "/api/origin/DEMO/customer/CUST-1/"), cs.CountRequests("PATCH", "/api/origin/DEMO/user/"+key); put != 1 || patch != 1 {
		t.Errorf("PUT customer %d, PATCH user %d; want 1 and 1; requests %v", put, patch, cs.Requests())
	}
	// The activation is a command like another: published again, nothing
	// happens.
	publish(t, e.js, activateSubject, "", activate(id, key, "CUST-1", ""))
	time.Sleep(300 * time.Millisecond)
	if n := cs.ActivationEmails(key); n != 1 || len(e.events.of(id)) != 3 {
		t.Errorf("after a duplicate: activation e-mails %d, events %v", n, types(e.events.of(id)))
	}
}

func TestCloudSuiteActivationMustNameTheAnnouncedUser(t *testing.T) {
	e := startEnv(t, withCloudSuitePoll(100*time.Millisecond))
	cs := e.sims.CloudSuite
	key := cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(2), "x@example.com", time.Minute))
	e.waitAnnounced(key)
	id := csID(key)
	publish(t, e.js, activateSubject, "", activate(id, csKey(3), "CUST-2", ""))
	evs := e.events.waitFor(t, "rejection", 10*time.Second, func([]received) bool { return len(e.events.of(id)) >= 2 })
	_ = evs
	got := e.events.of(id)
	if got[1].Event.Type != "rejected" || got[1].Event.Errors[0].Field != "userKey" {
		t.Fatalf("events = %v, %s", types(got), got[1].Data)
	}
	// The rejection kept no claim: the corrected command continues the flow.
	cs.AddCustomer(cloudsuite.DemoOrigin, "CUST-2", map[string]any{"name": "Existing BV"})
	publish(t, e.js, activateSubject, "", activate(id, key, "CUST-2", ""))
	evs = e.ended(id)
	if got := types(evs); !slices.Equal(got, []string{"cloudsuite.user_registered", "rejected", "cloudsuite.user_activated", "completed"}) {
		t.Fatalf("events = %v (%s)", got, evs[len(evs)-1].Data)
	}
	if evs[3].Event.Result["customerCreated"] != false {
		t.Errorf("result = %v", evs[3].Event.Result)
	}
	if n := cs.CountRequests("PUT", "/api/origin/DEMO/customer/CUST-2/"); n != 0 {
		t.Errorf("PUT customer = %d without a customer object, want 0", n)
	}
}

func TestCloudSuiteStandaloneActivationAndUnknownUser(t *testing.T) {
	e := startEnv(t)
	cs := e.sims.CloudSuite
	key := cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(4), "erp@example.com", time.Minute))
	publish(t, e.js, activateSubject, "", activate("erp-activate-1", key, "CUST-4", `{"name":"ERP customer"}`))
	evs := e.terminal("erp-activate-1")
	if got := types(evs); !slices.Equal(got, []string{"cloudsuite.user_activated", "completed"}) || evs[0].Event.Flow != events.CmdCloudSuiteActivate {
		t.Fatalf("events = %v (%s)", got, evs[0].Data)
	}
	if cs.ActivationEmails(key) != 1 {
		t.Errorf("activation e-mails = %d", cs.ActivationEmails(key))
	}

	unknown := "00000000-0000-4000-8000-000000000000"
	publish(t, e.js, activateSubject, "", activate("erp-activate-2", unknown, "CUST-4", ""))
	evs = e.terminal("erp-activate-2")
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeVendorRejected || last.Error.VendorStatus != 404 || !contains(last.Error.Message, "userKey") {
		t.Fatalf("events = %v, error %+v", types(evs), last.Error)
	}
}

func TestCloudSuiteWaitingRegistrationCanBeCancelledButTakesNoCode(t *testing.T) {
	e := startEnv(t, withCloudSuitePoll(100*time.Millisecond))
	key := e.sims.CloudSuite.AddUser(cloudsuite.DemoOrigin, csUser(csKey(5), "refused@example.com", time.Minute))
	e.waitAnnounced(key)
	id := csID(key)
	publish(t, e.js, events.CommandSubject(events.CmdOTPSubmit), "", []byte(fmt.Sprintf(`{"registrationId":%q,"code":"123456"}`, id)))
	e.events.waitFor(t, "rejection", 10*time.Second, func([]received) bool { return len(e.events.of(id)) >= 2 })
	if r := e.events.of(id)[1]; r.Event.Type != "rejected" || !contains(string(r.Data), "cloudsuite.activate") {
		t.Fatalf("otp.submit to a flow waiting for activation: %s", r.Data)
	}
	publish(t, e.js, events.CommandSubject(events.CmdCancel), "", []byte(fmt.Sprintf(`{"registrationId":%q,"reason":"review refused"}`, id)))
	evs := e.ended(id)
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeCancelled {
		t.Fatalf("events = %v (%s)", types(evs), evs[len(evs)-1].Data)
	}
	if n := len(e.sims.CloudSuite.Requests()); n == 0 {
		t.Error("no request reached the simulator")
	}
	for _, r := range e.sims.CloudSuite.Requests() {
		if r.Method == "PATCH" {
			t.Errorf("a cancelled registration patched the user: %+v", r)
		}
	}
}

func TestCloudSuiteOutageBacksOffAndIsVisibleInMetrics(t *testing.T) {
	e := startEnv(t, withCloudSuitePoll(100*time.Millisecond))
	cs := e.sims.CloudSuite
	cs.Faults().Set(fault.Config{ErrorRate: 1})
	key := cs.AddUser(cloudsuite.DemoOrigin, csUser(csKey(6), "late@example.com", time.Minute))
	waitUntil(t, "failed polls in the metrics", 10*time.Second, func() bool {
		return metricValue(t, e, `registrar_cloudsuite_polls_total{result="error",tenant="acme"}`) >= 2
	})
	// Expired tokens on the way: the client authenticates again.
	cs.RevokeTokens()
	cs.Faults().Set(fault.Config{})
	e.waitAnnounced(key)
	if v := metricValue(t, e, `registrar_cloudsuite_users_total{result="announced",tenant="acme"}`); v != 1 {
		t.Errorf("announced users metric = %v", v)
	}
	if v := metricValue(t, e, `registrar_cloudsuite_poll_lease_held{tenant="acme"}`); v != 1 {
		t.Errorf("lease held = %v", v)
	}
	// The revoked token was answered 401 and a new one fetched.
	var unauthorized int
	for _, r := range cs.Requests() {
		if r.Status == http.StatusUnauthorized {
			unauthorized++
		}
	}
	if n := cs.CountRequests("POST", simulators.CloudSuiteTokenPath); n < 2 || unauthorized == 0 {
		t.Errorf("token requests = %d, 401 answers = %d: want a 401 after the revocation, then a new token", n, unauthorized)
	}
}

// TestCloudSuiteTwoInstancesAnnounceEachUserOnce runs two services on one
// NATS server and one store, polling the same origin, stops one in the
// middle and starts it again: every user is announced exactly once.
func TestCloudSuiteTwoInstancesAnnounceEachUserOnce(t *testing.T) {
	e := startEnv(t)
	cs := e.sims.CloudSuite
	// Both instances share the first one's NATS server and data directory
	// (its SQLite database and data key); they poll origin SHOP for tenant
	// shop.
	cfg := *e.cfg
	cfg.NATS.URL = e.svc.NATSURL()
	shop := e.sims.CloudSuiteTenant(50 * time.Millisecond)
	shop.Origin = "SHOP"
	cfg.Tenants = map[string]config.Tenant{"shop": {CloudSuite: shop}}
	shopID := func(key string) string { return handlers.CloudSuiteRegistrationID("SHOP", key) }
	type instance struct {
		svc    *service.Service
		cancel context.CancelFunc
		done   chan error
	}
	startOne := func() *instance {
		c := cfg
		svc, err := service.New(t.Context(), service.Options{Config: &c, Logger: e.log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		in := &instance{svc: svc, cancel: cancel, done: make(chan error, 1)}
		go func() { in.done <- svc.Run(ctx) }()
		<-svc.Running()
		return in
	}
	stopOne := func(in *instance) {
		in.cancel()
		if err := <-in.done; err != nil {
			t.Errorf("run: %v", err)
		}
		in.svc.Close()
	}
	a, b := startOne(), startOne()
	var keys []string
	add := func(from, to int) {
		for i := from; i < to; i++ {
			keys = append(keys, cs.AddUser("SHOP", csUser(csKey(100+i), fmt.Sprintf("u%d@example.com", i), time.Duration(60-i)*time.Second)))
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitShop := func(keys []string) {
		t.Helper()
		e.events.waitFor(t, fmt.Sprintf("%d users announced", len(keys)), 20*time.Second, func([]received) bool {
			got := announced(e.events)
			for _, k := range keys {
				if got[shopID(k)] == 0 {
					return false
				}
			}
			return true
		})
	}
	add(0, 20)
	waitShop(keys[:5])
	stopOne(a) // in the middle: gives its lease up if it had it
	add(20, 30)
	waitShop(keys)
	a = startOne()
	add(30, 40)
	waitShop(keys)
	time.Sleep(300 * time.Millisecond)
	stopOne(a)
	stopOne(b)

	got := announced(e.events)
	if len(got) != len(keys) {
		t.Errorf("announced %d users, want %d", len(got), len(keys))
	}
	for _, k := range keys {
		if n := got[shopID(k)]; n != 1 {
			t.Errorf("user %s announced %d times", k, n)
		}
	}
	// Only the lease holder polls: profiles are read about once per user
	// (again only when an instance stopped between reading a profile and
	// announcing its user).
	reads := 0
	for _, r := range cs.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/api/userprofile/") {
			reads++
		}
	}
	if reads < len(keys) || reads > len(keys)+2 {
		t.Errorf("profile reads = %d, want about %d (one per user)", reads, len(keys))
	}
}

// ended waits for the flow's completed or failed event (a rejected
// command does not end a flow that runs) and returns all its events.
func (e *env) ended(id string) []received {
	e.t.Helper()
	e.events.waitFor(e.t, "end of "+id, 20*time.Second, func([]received) bool {
		for _, r := range e.events.of(id) {
			if r.Event.Type == "completed" || r.Event.Type == "failed" {
				return true
			}
		}
		return false
	})
	return e.events.of(id)
}

// metricValue reads one sample of the service's /metrics.
func metricValue(t *testing.T, e *env, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.svc.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err == nil {
				return f
			}
		}
	}
	return 0
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
