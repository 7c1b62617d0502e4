package service_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Justine is a prospect of the simulator's Lyon club (its second club);
// registering her in Paris (the first club) finds her in the network.
const justine = "justine.doe@example.com"

var (
	submitSubject = events.CommandSubject(events.CmdOTPSubmit)
	resendSubject = events.CommandSubject(events.CmdOTPResend)
	cancelSubject = events.CommandSubject(events.CmdCancel)
)

func (e *env) submit(id, code string) {
	e.t.Helper()
	publish(e.t, e.js, submitSubject, "", []byte(fmt.Sprintf(`{"registrationId":%q,"code":%q}`, id, code)))
}

// waitEvents waits until the registration has n events and returns them.
func (e *env) waitEvents(id string, n int) []received {
	e.t.Helper()
	e.events.waitFor(e.t, fmt.Sprintf("%d events of %s", n, id), 20*time.Second, func([]received) bool {
		return len(e.events.of(id)) >= n
	})
	return e.events.of(id)
}

// lastCode is the code the simulator last texted.
func (e *env) lastCode() string {
	e.t.Helper()
	sms := e.sims.Resamania.SMS()
	if len(sms) == 0 {
		e.t.Fatal("the simulator sent no SMS")
	}
	return sms[len(sms)-1].Code
}

func TestChainTransferWrongCodeThenRight(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.registerIn(0, "tr-1", justine, ""))

	evs := e.waitEvents("tr-1", 1)
	req := evs[0]
	if req.Event.Type != "otp.requested" {
		t.Fatalf("first event = %s, want otp.requested", req.Event.Type)
	}
	var otp events.OTPRequested
	mustUnmarshal(t, req.Data, &otp)
	if otp.Channel != "sms" || otp.AttemptsLeft != 3 || !strings.HasSuffix(otp.MaskedDestination, "1615") || strings.Contains(otp.MaskedDestination, "3361234") ||
		otp.ExpiresAt.Before(time.Now().Add(5*time.Minute)) {
		t.Errorf("otp.requested = %+v", otp)
	}
	// The request was made with the destination club's headers.
	for _, r := range e.sims.Resamania.Requests() {
		if r.Method == "POST" && r.Route == "/contact_migration_requests" && r.ClubID != e.club {
			t.Errorf("migration request with club header %q, want the destination %q", r.ClubID, e.club)
		}
	}
	if got := e.sims.Resamania.CountRequests("POST", "/contact_migration_requests"); got != 1 {
		t.Fatalf("migration requests = %d, want 1", got)
	}
	f, err := e.svc.Store().Flow(t.Context(), "tr-1")
	if err != nil || f.Status != "waiting" || f.WaitingFor != "otp" {
		t.Fatalf("flow = %s/%s (%v), want waiting for otp", f.Status, f.WaitingFor, err)
	}

	code := e.lastCode()
	e.submit("tr-1", wrong(code))
	evs = e.waitEvents("tr-1", 2)
	var rej events.OTPRejected
	mustUnmarshal(t, evs[1].Data, &rej)
	if evs[1].Event.Type != "otp.rejected" || rej.AttemptsLeft != 2 {
		t.Fatalf("after a wrong code: %s %+v", evs[1].Event.Type, rej)
	}

	e.submit("tr-1", code)
	evs = e.terminal("tr-1")
	if got, want := types(evs), []string{"otp.requested", "otp.rejected", "resamania.prospect_transferred", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	var moved events.ResamaniaProspectTransferred
	mustUnmarshal(t, evs[2].Data, &moved)
	if moved.DestinationClubID != e.club || moved.NewContactID == "" || moved.NewContactID == moved.ContactID {
		t.Errorf("prospect_transferred = %+v", moved)
	}
	if evs[3].Event.Result["transferred"] != true || evs[3].Event.Result["contactId"] != moved.NewContactID {
		t.Errorf("completed result = %v", evs[3].Event.Result)
	}
	if n := e.contactCreations(); n != 0 {
		t.Errorf("contacts created by POST = %d, want 0 (the vendor creates the transferred contact)", n)
	}
	// No secret code in any event.
	for _, r := range e.events.all() {
		if strings.Contains(string(r.Data), code) {
			t.Errorf("event %s carries the code", r.Event.Type)
		}
	}
}

func wrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestChainProspectElsewhereRejected(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.registerIn(0, "rej-1", justine, `"onProspectElsewhere":"reject",`))
	evs := e.terminal("rej-1")
	if len(evs) != 1 || evs[0].Event.Error == nil || evs[0].Event.Error.Code != events.CodeProspectElsewhere ||
		!strings.Contains(evs[0].Event.Error.Message, resamania.ClubIRI(e.account.ClientToken, e.account.Clubs[1].ID)) {
		t.Fatalf("events = %s", evs[0].Data)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/contact_migration_requests"); n != 0 {
		t.Errorf("migration requests = %d, want 0", n)
	}
}

func TestChainClientElsewhereNotTransferable(t *testing.T) {
	e := startEnv(t)
	// John is a client of the first club; he registers in the second.
	publish(t, e.js, registerSubject, "", e.registerIn(1, "nt-1", "john+test@example.com", ""))
	evs := e.terminal("nt-1")
	if len(evs) != 1 || evs[0].Event.Error == nil || evs[0].Event.Error.Code != events.CodeContactNotTransferable {
		t.Fatalf("events = %v %s", types(evs), evs[0].Data)
	}
}

func TestOTPAttemptsExhaustedCancelsTheRequest(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.registerIn(0, "ex-1", justine, ""))
	e.waitEvents("ex-1", 1)
	code := e.lastCode()
	for i := 1; i <= 3; i++ {
		e.submit("ex-1", wrong(code))
		e.waitEvents("ex-1", 1+i)
	}
	evs := e.terminal("ex-1")
	if got, want := types(evs), []string{"otp.requested", "otp.rejected", "otp.rejected", "otp.rejected", "failed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if c := evs[4].Event.Error.Code; c != events.CodeOTPAttemptsExceeded {
		t.Errorf("failure code = %s", c)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/signature_requests/{id}/transitions"); n != 4 {
		t.Errorf("transitions = %d, want 3 validations and 1 cancel", n)
	}
	// A code for a flow that does not wait any more is rejected.
	e.submit("ex-1", code)
	e.waitEvents("ex-1", 6)
	if last := e.events.of("ex-1")[5]; last.Event.Type != "rejected" {
		t.Errorf("code after the end: %s", last.Event.Type)
	}
}

func TestOTPExpiryCancelsAndFails(t *testing.T) {
	e := startEnv(t, withOTP(time.Second, time.Millisecond))
	publish(t, e.js, registerSubject, "", e.registerIn(0, "exp-1", justine, ""))
	evs := e.terminal("exp-1")
	if got, want := types(evs), []string{"otp.requested", "failed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if c := evs[1].Event.Error.Code; c != events.CodeOTPExpired {
		t.Errorf("failure code = %s", c)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/signature_requests/{id}/transitions"); n != 1 {
		t.Errorf("transitions = %d, want the cancel", n)
	}
}

func TestOTPResendSendsANewCode(t *testing.T) {
	e := startEnv(t, withOTP(time.Minute, time.Millisecond))
	publish(t, e.js, registerSubject, "", e.registerIn(0, "rs-1", justine, ""))
	e.waitEvents("rs-1", 1)
	first := e.lastCode()
	time.Sleep(5 * time.Millisecond)
	publish(t, e.js, resendSubject, "", []byte(`{"registrationId":"rs-1"}`))
	evs := e.waitEvents("rs-1", 2)
	if evs[1].Event.Type != "otp.requested" {
		t.Fatalf("after resend: %s", evs[1].Event.Type)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/contact_migration_requests"); n != 2 {
		t.Errorf("migration requests = %d, want 2", n)
	}
	second := e.lastCode()
	e.submit("rs-1", second)
	if got := types(e.terminal("rs-1")); got[len(got)-1] != "completed" {
		t.Errorf("events = %v (first code %s… replaced)", got, first[:1])
	}
}

func TestCancelEndsAWaitingFlow(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.registerIn(0, "cn-1", justine, ""))
	e.waitEvents("cn-1", 1)
	publish(t, e.js, cancelSubject, "", []byte(`{"registrationId":"cn-1","reason":"changed her mind"}`))
	evs := e.terminal("cn-1")
	if got := types(evs); !slices.Equal(got, []string{"otp.requested", "failed"}) || evs[1].Event.Error.Code != events.CodeCancelled {
		t.Fatalf("events = %v %s", got, evs[len(evs)-1].Data)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/signature_requests/{id}/transitions"); n != 1 {
		t.Errorf("transitions = %d, want the cancel", n)
	}
}

func TestWaitingFlowSurvivesARestart(t *testing.T) {
	e := startEnv(t, withOTP(4*time.Second, time.Millisecond))
	lyon := resamania.ClubIRI(e.account.ClientToken, e.account.Clubs[1].ID)
	e.sims.Resamania.AddContact(e.account.ClientToken, resamania.Contact{Email: "paul@example.com", GivenName: "Paul", FamilyName: "Prospect",
		BirthDate: "1990-02-02", State: resamania.StateProspect, ClubID: lyon, Mobile: "+33600000001"})
	publish(t, e.js, registerSubject, "", e.registerIn(0, "rst-1", justine, ""))
	e.waitEvents("rst-1", 1)
	code := e.lastCode()
	publish(t, e.js, registerSubject, "", e.registerIn(0, "rst-2", "paul@example.com", ""))
	requested := e.waitEvents("rst-2", 1)[0]

	e.restart()
	e.submit("rst-1", code)
	if got := types(e.terminal("rst-1")); got[len(got)-1] != "completed" {
		t.Fatalf("after restart: %v", got)
	}
	// The other flow still expires on time after the restart.
	evs := e.terminal("rst-2")
	if got := types(evs); !slices.Equal(got, []string{"otp.requested", "failed"}) || evs[1].Event.Error.Code != events.CodeOTPExpired {
		t.Fatalf("rst-2 after restart: %v", got)
	}
	var otp events.OTPRequested
	mustUnmarshal(t, requested.Data, &otp)
	if late := evs[1].Event.OccurredAt.Sub(otp.ExpiresAt); late < 0 || late > 5*time.Second {
		t.Errorf("expired %s after its deadline", late)
	}
}

func TestTransferFromAClubWithoutDataSharingIsAccessDenied(t *testing.T) {
	e := startEnv(t, func(_ *env, _ *config.Config, sc *resamania.SimConfig) { sc.Accounts[0].Clubs[0].NoSharing = true })
	publish(t, e.js, registerSubject, "", e.registerIn(0, "ad-1", justine, ""))
	evs := e.terminal("ad-1")
	last := evs[len(evs)-1]
	if last.Event.Error == nil || last.Event.Error.Code != events.CodeAccessDenied || last.Event.Error.VendorStatus != 400 {
		t.Fatalf("events = %v, last %s", types(evs), last.Data)
	}
}

func TestStandaloneTransferCommand(t *testing.T) {
	e := startEnv(t)
	justineIRI := e.contactIRI(justine)
	src := e.account.Clubs[1]
	publish(t, e.js, events.CommandSubject(events.CmdResamaniaTransfer), "", []byte(fmt.Sprintf(
		`{"registrationId":"st-1","tenant":"acme","contactId":%q,"sourceClubId":%q,"destinationClubId":%q,"destinationNetworkNodeId":%q}`,
		justineIRI, resamania.ClubIRI(e.account.ClientToken, src.ID), e.club, e.node)))
	e.waitEvents("st-1", 1)
	e.submit("st-1", e.lastCode())
	if got, want := types(e.terminal("st-1")), []string{"otp.requested", "resamania.prospect_transferred", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestChainMigrateWithSale(t *testing.T) {
	e := startEnv(t)
	e.sims.Resamania.AddSale(e.account.ClientToken, resamania.SimSale{ID: 33, ContactID: e.contactIRI(justine)})
	publish(t, e.js, registerSubject, "", e.registerIn(0, "mg-1", justine, `"onProspectElsewhere":"migrate","saleId":"33",`))
	evs := e.terminal("mg-1")
	if got, want := types(evs), []string{"resamania.contact_created", "resamania.contact_migrated", "resamania.sale_updated", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (%s)", got, want, evs[len(evs)-1].Data)
	}
	if r := evs[3].Event.Result; r["migrated"] != true || r["saleId"] != "33" {
		t.Errorf("result = %v", r)
	}
	var grants []string
	for _, r := range e.sims.Resamania.Requests() {
		if r.Route == "/contacts/{id}/migrate" {
			grants = append(grants, r.Grant)
		}
	}
	if len(grants) != 1 || grants[0] != resamania.GrantContactCredentials {
		t.Errorf("migrate calls with grants %v, want one as the source contact", grants)
	}
	if n := e.sims.Resamania.CountResponses("PUT", "/sale/{id}/update_contact", 204); n != 1 {
		t.Errorf("sale updates = %d, want 1", n)
	}
}

func TestRedeliveredCommandsCauseNoSecondVendorEffect(t *testing.T) {
	e := startEnv(t)
	body := e.registerIn(0, "rd-1", justine, "")
	publish(t, e.js, registerSubject, "rd-cmd-1", body)
	e.waitEvents("rd-1", 1)
	// The same command again (another message id) and the step message
	// again: neither asks the vendor for a second code.
	publish(t, e.js, registerSubject, "rd-cmd-2", body)
	publish(t, e.js, "registrar.step.resamania.transfer.request", "replayed-step",
		[]byte(`{"registrationId":"rd-1","flow":"resamania.register","step":"resamania.transfer.request","seq":2}`))
	code := e.lastCode()
	e.submit("rd-1", code)
	e.terminal("rd-1")
	// The same submit again: no second validation.
	e.submit("rd-1", code)
	e.waitEvents("rd-1", 4)
	if n := e.sims.Resamania.CountRequests("POST", "/contact_migration_requests"); n != 1 {
		t.Errorf("migration requests = %d, want 1", n)
	}
	if n := e.sims.Resamania.CountRequests("POST", "/signature_requests/{id}/transitions"); n != 1 {
		t.Errorf("transitions = %d, want 1", n)
	}
}

// contactIRI is the simulator's contact with that e-mail.
func (e *env) contactIRI(email string) string {
	for _, c := range e.sims.Resamania.Contacts(e.account.ClientToken) {
		if c.Email == email {
			return c.ID
		}
	}
	e.t.Fatalf("no contact %s at the simulator", email)
	return ""
}

// TestCodeValidatedButOutcomeLostCompletes plays a validation whose reply
// (or the commit after it) was lost: the vendor already moved the person
// when the code is submitted, and the flow completes with the contact it
// finds in the destination club instead of failing.
func TestCodeValidatedButOutcomeLostCompletes(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.registerIn(0, "lost-1", justine, ""))
	e.waitEvents("lost-1", 1)
	sms := e.sims.Resamania.SMS()
	last := sms[len(sms)-1]

	tc, err := e.sims.ResamaniaTenant(e.account.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	client, err := resamania.NewClient(resamania.Config{BaseURL: tc.BaseURL, ClientToken: tc.ClientToken, ClientID: tc.ClientID,
		ClientSecret: tc.ClientSecret, APIKey: tc.APIKey}, resamania.WithoutRateLimit())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ValidateSignatureRequest(t.Context(), resamania.Scope{ClubID: e.club, NetworkNodeID: e.node}, last.SignatureRequestID, last.Code); err != nil {
		t.Fatal(err)
	}

	e.submit("lost-1", last.Code)
	evs := e.terminal("lost-1")
	if got, want := types(evs), []string{"otp.requested", "resamania.prospect_transferred", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (%s)", got, want, evs[len(evs)-1].Data)
	}
}

// TestRedeliveredStepMessagesCauseNoSecondVendorEffect republishes every
// step message of a finished migration (as a redelivery or a replay would)
// and checks the simulator saw no second call.
func TestRedeliveredStepMessagesCauseNoSecondVendorEffect(t *testing.T) {
	e := startEnv(t)
	e.sims.Resamania.AddSale(e.account.ClientToken, resamania.SimSale{ID: 33, ContactID: e.contactIRI(justine)})
	publish(t, e.js, registerSubject, "", e.registerIn(0, "rdm-1", justine, `"onProspectElsewhere":"migrate","saleId":"33",`))
	e.terminal("rdm-1")
	before := len(e.sims.Resamania.Requests())

	for seq, step := range []string{"resamania.lookup", "resamania.migrate.temp", "resamania.migrate.contact", "resamania.sale.update"} {
		body := fmt.Sprintf(`{"registrationId":"rdm-1","flow":"resamania.register","step":%q,"seq":%d}`, step, seq+1)
		publish(t, e.js, "registrar.step."+step, fmt.Sprintf("again-%d", seq), []byte(body))
	}
	// A later registration's end shows the replays were handled.
	publish(t, e.js, registerSubject, "", e.register("rdm-2", "acme", "rdm2@example.com", ""))
	e.terminal("rdm-2")
	var after []string
	for _, r := range e.sims.Resamania.Requests()[before:] {
		after = append(after, r.Method+" "+r.Route)
	}
	want := []string{"GET /contacts", "GET /network/contact_search", "POST /contacts"} // rdm-2 only
	if !slices.Equal(after, want) {
		t.Errorf("vendor calls after the replays = %v, want only rdm-2's %v", after, want)
	}
	if got := countTypes(e.events.of("rdm-1"))["completed"]; got != 1 {
		t.Errorf("rdm-1 completed %d times", got)
	}
}
