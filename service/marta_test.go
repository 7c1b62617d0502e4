package service_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/marta"
)

const martaPassword = "S3cret-passw0rd!"

var signupSubject = events.CommandSubject(events.CmdMartaSignup)

func signup(id, username, profileExtra string) []byte {
	return []byte(fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","campaignId":%q,"categoryId":"56","deviceType":1,
		"username":%q,"password":%q,"profile":{"name":"Jane","surname":"Doe","gender":"F",%s
		"consents":{"usedforpromotions":true,"usedforstatistics":false}}}`, id, marta.DemoCampaignID, username, martaPassword, profileExtra))
}

func (e *env) martaCode(to string) string {
	e.t.Helper()
	code, ok := e.sims.Marta.LastCode(to)
	if !ok {
		e.t.Fatalf("MARTA sent no code to %s", to)
	}
	return code
}

func TestMartaNewUserWrongCodeThenRight(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, signupSubject, "", signup("mt-new", "new.member@example.com", `"birthdate":"1992-04-22",`))
	evs := e.waitEvents("mt-new", 2)
	if got := types(evs); !slices.Equal(got, []string{"marta.customer_checked", "otp.requested"}) {
		t.Fatalf("events = %v", got)
	}
	code := e.martaCode("new.member@example.com")
	e.submit("mt-new", wrong(code))
	e.waitEvents("mt-new", 3)
	e.submit("mt-new", code)
	evs = e.terminal("mt-new")
	want := []string{"marta.customer_checked", "otp.requested", "otp.rejected", "marta.account_created", "marta.profile_completed", "completed"}
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (%s)", got, want, evs[len(evs)-1].Data)
	}
	if r := evs[5].Event.Result; r["card"] == "" || r["card"] == nil || r["branch"] != "new" {
		t.Errorf("result = %v", r)
	}
	// The calls, in order, with the token scope each used.
	var calls []string
	for _, r := range e.sims.Marta.Requests() {
		calls = append(calls, r.Method+" "+r.Path+" "+r.Scope)
	}
	wantCalls := []string{
		"POST /auth customersynchro",
		"GET /customer/checkcard customersynchro",
		"POST /customer/verifyemail customersynchro",
		"PUT /customer/registrationVCWithVerificationCode customersynchro",
		"PUT /customer/registrationVCWithVerificationCode customersynchro",
		"POST /auth customer",
		"GET /customer/customerdatafields/" + marta.DemoCampaignID + " customer",
		"GET /customer customer",
		"PUT /customer customer",
	}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("MARTA calls:\n got %q\nwant %q", calls, wantCalls)
	}
	// The password and the codes appear nowhere: events, dead letters,
	// the status API.
	for _, r := range append(e.events.all(), e.dlq.all()...) {
		if strings.Contains(string(r.Data), martaPassword) || strings.Contains(string(r.Data), code) {
			t.Errorf("%s carries the password or the code", r.Subject)
		}
	}
	f, err := e.svc.Store().Flow(t.Context(), "mt-new")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(f.Data), martaPassword) || strings.Contains(string(f.Data), "sealed") {
		t.Error("the stored flow keeps the password after the flow ended")
	}
}

func TestMartaPasswordIsSealedWhileWaiting(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, signupSubject, "", signup("mt-seal", "sealed@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("mt-seal", 2)
	f, err := e.svc.Store().Flow(t.Context(), "mt-seal")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(f.Data), martaPassword) || !strings.Contains(string(f.Data), `"sealed"`) {
		t.Errorf("stored flow data: password in clear or not sealed")
	}
}

func TestMartaCardHolderGetsCredentials(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, signupSubject, "", signup("mt-card", marta.DemoCardHolderEmail, `"birthdate":"1980-01-01",`))
	e.waitEvents("mt-card", 2)
	e.submit("mt-card", e.martaCode(marta.DemoCardHolderEmail))
	evs := e.terminal("mt-card")
	want := []string{"marta.customer_checked", "otp.requested", "marta.credentials_changed", "marta.profile_completed", "completed"}
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (%s)", got, want, evs[len(evs)-1].Data)
	}
	wantCalls := []string{
		"POST /auth customersynchro",
		"GET /customer/checkcard customersynchro",
		"POST /customer/generateverificationcode customersynchro",
		"PUT /customer/changeUAPByVerificationCode customersynchro",
		"POST /auth customer",
		"GET /customer/customerdatafields/" + marta.DemoCampaignID + " customer",
		"GET /customer customer",
		"PUT /customer customer",
	}
	if calls := martaCalls(e); !slices.Equal(calls, wantCalls) {
		t.Errorf("MARTA calls:\n got %q\nwant %q", calls, wantCalls)
	}
}

func martaCalls(e *env) []string {
	var calls []string
	for _, r := range e.sims.Marta.Requests() {
		calls = append(calls, r.Method+" "+r.Path+" "+r.Scope)
	}
	return calls
}

func TestMartaAlreadyRegisteredFailsWithoutACode(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, signupSubject, "", signup("mt-reg", marta.DemoRegisteredEmail, `"birthdate":"1980-01-01",`))
	evs := e.terminal("mt-reg")
	if got := types(evs); !slices.Equal(got, []string{"marta.customer_checked", "failed"}) || evs[1].Event.Error.Code != events.CodeAlreadyRegistered {
		t.Fatalf("events = %v", got)
	}
	if n := len(e.sims.Marta.Codes()); n != 0 {
		t.Errorf("codes sent = %d, want 0", n)
	}
	if calls, want := martaCalls(e), []string{"POST /auth customersynchro", "GET /customer/checkcard customersynchro"}; !slices.Equal(calls, want) {
		t.Errorf("MARTA calls = %q, want %q", calls, want)
	}
}

// TestMartaOtherAnswerFailsWithTheVendorStatus: an answer the seed does not
// list ends the flow with the vendor's status kept.
func TestMartaOtherAnswerFailsWithTheVendorStatus(t *testing.T) {
	e := startEnv(t)
	// A first sign-up warms the customersynchro token, so the injected
	// answer hits check-card.
	publish(t, e.js, signupSubject, "", signup("mt-warm", marta.DemoRegisteredEmail, `"birthdate":"1980-01-01",`))
	e.terminal("mt-warm")
	e.sims.Marta.Faults().FailNext(1, 400)
	publish(t, e.js, signupSubject, "", signup("mt-other", "other.answer@example.com", `"birthdate":"1980-01-01",`))
	evs := e.terminal("mt-other")
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeVendorRejected || last.Error.Vendor != "marta" || last.Error.VendorStatus != 400 {
		t.Fatalf("events = %v, last %+v", types(evs), last.Error)
	}
}

func TestMartaMissingMandatoryFieldFailsBeforeTheUpdate(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, signupSubject, "", signup("mt-mand", "no.birthdate@example.com", ""))
	e.waitEvents("mt-mand", 2)
	e.submit("mt-mand", e.martaCode("no.birthdate@example.com"))
	evs := e.terminal("mt-mand")
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeMandatoryFields ||
		!slices.ContainsFunc(last.Error.Fields, func(f events.FieldError) bool { return f.Field == "profile.birthdate" }) {
		t.Fatalf("events = %v, last %+v", types(evs), last.Error)
	}
	if n := e.sims.Marta.CountRequests("PUT", "/customer"); n != 0 {
		t.Errorf("PUT /customer calls = %d, want 0", n)
	}
}

func TestMartaCodeAfterTheJWTExpiredCompletes(t *testing.T) {
	e := startEnv(t, withMartaSim(func(mc *marta.SimConfig) { mc.JWTTTL = time.Second }))
	publish(t, e.js, signupSubject, "", signup("mt-jwt", "late@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("mt-jwt", 2)
	time.Sleep(1500 * time.Millisecond) // the customersynchro JWT has expired
	e.submit("mt-jwt", e.martaCode("late@example.com"))
	if got := types(e.terminal("mt-jwt")); got[len(got)-1] != "completed" {
		t.Fatalf("events = %v", got)
	}
}

// TestMartaUsernameTakenFails: the e-mail is new to the campaign, but
// another customer already signs in with it as a username (AnswerCode 263).
func TestMartaUsernameTakenFails(t *testing.T) {
	e := startEnv(t)
	e.sims.Marta.AddCustomer(marta.SimCustomer{Email: "someone.else@example.com", Username: "taken@example.com",
		Password: "another-Passw0rd", Registered: true})
	publish(t, e.js, signupSubject, "", signup("mt-263", "taken@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("mt-263", 2)
	e.submit("mt-263", e.martaCode("taken@example.com"))
	evs := e.terminal("mt-263")
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeUsernameTaken || last.Error.VendorCode != marta.CodeUsernameTaken {
		t.Fatalf("events = %v, last %+v", types(evs), last.Error)
	}
}

// TestMartaRedactedPasswordIsRejected: a dead letter of a sign-up carries
// the redaction marker instead of the password; replaying it must not start
// a flow with the marker as the password.
func TestMartaRedactedPasswordIsRejected(t *testing.T) {
	e := startEnv(t)
	body := strings.Replace(string(signup("mt-redacted", "redacted@example.com", `"birthdate":"1992-04-22",`)), martaPassword, "[redacted]", 1)
	publish(t, e.js, signupSubject, "", []byte(body))
	evs := e.terminal("mt-redacted")
	if len(evs) != 1 || evs[0].Event.Type != "rejected" || evs[0].Event.Errors[0].Field != "password" {
		t.Fatalf("events = %v %s", types(evs), evs[0].Data)
	}
}

// TestMartaResendThenCancel: a new code is e-mailed on request, and a
// cancel ends the waiting sign-up.
func TestMartaResendThenCancel(t *testing.T) {
	e := startEnv(t, withOTP(time.Minute, time.Millisecond))
	publish(t, e.js, signupSubject, "", signup("mt-rs", "resend@example.com", `"birthdate":"1992-04-22",`))
	e.waitEvents("mt-rs", 2)
	time.Sleep(5 * time.Millisecond)
	publish(t, e.js, resendSubject, "", []byte(`{"registrationId":"mt-rs"}`))
	evs := e.waitEvents("mt-rs", 3)
	if evs[2].Event.Type != "otp.requested" || e.sims.Marta.CountRequests("POST", "/customer/verifyemail") != 2 {
		t.Fatalf("after resend: %v, verifyemail calls %d", types(evs), e.sims.Marta.CountRequests("POST", "/customer/verifyemail"))
	}
	publish(t, e.js, cancelSubject, "", []byte(`{"registrationId":"mt-rs"}`))
	evs = e.terminal("mt-rs")
	if last := evs[len(evs)-1].Event; last.Type != "failed" || last.Error.Code != events.CodeCancelled {
		t.Fatalf("events = %v", types(evs))
	}
}
