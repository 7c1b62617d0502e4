package service_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

func TestRegisterNewPersonCreatesContact(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("reg-new", "acme", "ada@example.com", `,"mobile":"+33612345678"`))

	evs := e.terminal("reg-new")
	if got, want := types(evs), []string{"resamania.contact_created", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	created, done := evs[0].Event, evs[1].Event
	if created.Contact == nil || !strings.HasPrefix(created.Contact.ID, "/"+e.account.ClientToken+"/contacts/") {
		t.Fatalf("contact_created carries no contact IRI: %s", evs[0].Data)
	}
	if done.Result["contactId"] != created.Contact.ID || done.Result["created"] != true {
		t.Errorf("completed result = %v, want contactId %s created true", done.Result, created.Contact.ID)
	}
	for _, r := range evs {
		if r.Event.EventID == "" || r.Event.Flow != events.CmdResamaniaRegister || r.Event.OccurredAt.IsZero() {
			t.Errorf("envelope incomplete: %s", r.Data)
		}
		if r.Header.Get(nats.MsgIdHdr) != r.Event.EventID {
			t.Errorf("Nats-Msg-Id %q != eventId %q", r.Header.Get(nats.MsgIdHdr), r.Event.EventID)
		}
		if r.Subject != events.EventSubjectPrefix+r.Event.Type {
			t.Errorf("subject %s does not match type %s", r.Subject, r.Event.Type)
		}
	}
	if n := e.contactCreations(); n != 1 {
		t.Errorf("contacts created at the simulator = %d, want 1", n)
	}
}

func TestRegisterPersonAlreadyInClub(t *testing.T) {
	e := startEnv(t)
	existing := e.sims.Resamania.AddContact(e.account.ClientToken, resamania.Contact{
		Email: "marie@example.com", GivenName: "Marie", FamilyName: "Curie", BirthDate: "1990-11-07",
		State: resamania.StateProspect, ClubID: e.club,
	})
	publish(t, e.js, registerSubject, "", e.register("reg-existing", "acme", "marie@example.com", ""))

	evs := e.terminal("reg-existing")
	if got, want := types(evs), []string{"resamania.contact_found", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if evs[0].Event.Contact.ID != existing.ID || evs[1].Event.Result["created"] != false {
		t.Errorf("found %v result %v, want contact %s not created", evs[0].Event.Contact, evs[1].Event.Result, existing.ID)
	}
	for _, r := range e.sims.Resamania.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/contacts") {
			t.Errorf("a contact creation was attempted: %+v", r)
		}
	}
}

func TestSameCommandTwiceStartsOneFlow(t *testing.T) {
	e := startEnv(t)
	body := e.register("reg-twice", "acme", "grace@example.com", "")
	publish(t, e.js, registerSubject, "first-publish", body)
	publish(t, e.js, registerSubject, "second-publish", body)

	e.terminal("reg-twice")
	// Give a second flow, if one had started, the time to show.
	time.Sleep(500 * time.Millisecond)
	terminals := 0
	for _, r := range e.events.of("reg-twice") {
		if isTerminal(r.Event.Type) {
			terminals++
		}
	}
	if terminals != 1 {
		t.Errorf("terminal events = %d, want 1: %v", terminals, types(e.events.of("reg-twice")))
	}
	if n := e.contactCreations(); n != 1 {
		t.Errorf("contacts created = %d, want 1", n)
	}
}

func TestRegistrationIDOfAnotherFlowIsRejected(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("reg-shared", "acme", "one@example.com", ""))
	e.terminal("reg-shared")
	// Same id, another command type that starts a flow: rejected, the first flow untouched.
	publish(t, e.js, events.CommandSubject(events.CmdOTPResend), "", []byte(`{"registrationId":"reg-shared"}`))
	e.events.waitFor(t, "rejected resend", 10*time.Second, func([]received) bool {
		evs := e.events.of("reg-shared")
		return len(evs) == 3 && evs[2].Event.Type == "rejected"
	})
}

func TestRequiredFieldsMissingFails(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, registerSubject, "", e.register("reg-strict", "strict", "emmy@example.com", ""))

	evs := e.terminal("reg-strict")
	if got := types(evs); !slices.Equal(got, []string{"failed"}) {
		t.Fatalf("events = %v, want [failed]", got)
	}
	fe := evs[0].Event.Error
	if fe == nil || fe.Code != events.CodeRequiredFields || fe.Vendor != "resamania" || fe.VendorStatus != 400 {
		t.Fatalf("error = %+v, want required_fields from resamania 400", fe)
	}
	if !slices.ContainsFunc(fe.Fields, func(f events.FieldError) bool { return f.Field == "contact.mobile" }) {
		t.Errorf("fields = %+v, want contact.mobile named", fe.Fields)
	}
}

func TestInvalidCommandsAreRejectedAndServiceGoesOn(t *testing.T) {
	e := startEnv(t)
	valid := func(mut func(string) string) []byte {
		return []byte(mut(string(e.register("reg-x", "acme", "x@example.com", ""))))
	}
	tests := []struct {
		name       string
		msgID      string
		body       []byte
		wantID     string
		wantFields []string
	}{
		{name: "bad JSON", msgID: "bad-json", body: []byte(`{"registrationId": "reg-bad",`), wantID: "reg-bad", wantFields: []string{"body"}},
		{name: "missing email", msgID: "missing", wantID: "reg-missing", wantFields: []string{"contact.email"},
			body: valid(func(s string) string {
				return strings.Replace(strings.Replace(s, `"email":"x@example.com",`, "", 1), "reg-x", "reg-missing", 1)
			})},
		{name: "malformed birth date and bare club id", msgID: "malformed", wantID: "reg-malformed", wantFields: []string{"clubId", "contact.birthDate"},
			body: valid(func(s string) string {
				s = strings.Replace(s, "1995-12-10", "10/12/1995", 1)
				s = strings.Replace(s, e.club, "12", 1)
				return strings.Replace(s, "reg-x", "reg-malformed", 1)
			})},
		{name: "unknown tenant", msgID: "tenant", wantID: "reg-tenant", wantFields: []string{"tenant"},
			body: valid(func(s string) string {
				return strings.Replace(strings.Replace(s, `"acme"`, `"nobody"`, 1), "reg-x", "reg-tenant", 1)
			})},
		{name: "over 64 KiB", msgID: "oversized", wantFields: []string{"body"},
			body: []byte(`{"registrationId":"reg-big","pad":"` + strings.Repeat("x", 65<<10) + `"}`)},
	}
	for _, tt := range tests {
		publish(t, e.js, registerSubject, tt.msgID, tt.body)
	}
	publish(t, e.js, registerSubject, "", e.register("reg-after", "acme", "after@example.com", ""))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := e.events.waitFor(t, "rejection of "+tt.name, 10*time.Second, func(ms []received) bool {
				return slices.ContainsFunc(ms, func(r received) bool { return r.Header.Get(handlers.HeaderCommandMsgID) == tt.msgID })
			})
			i := slices.IndexFunc(msgs, func(r received) bool { return r.Header.Get(handlers.HeaderCommandMsgID) == tt.msgID })
			ev := msgs[i].Event
			if ev.Type != "rejected" || msgs[i].Subject != "registration.evt.rejected" {
				t.Fatalf("got %s on %s", ev.Type, msgs[i].Subject)
			}
			if ev.RegistrationID != tt.wantID {
				t.Errorf("registrationId = %q, want %q", ev.RegistrationID, tt.wantID)
			}
			var fields []string
			for _, f := range ev.Errors {
				fields = append(fields, f.Field)
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
			}
			for _, want := range tt.wantFields {
				if !slices.Contains(fields, want) {
					t.Errorf("fields = %v, want %s named", fields, want)
				}
			}
		})
	}
	if got := types(e.terminal("reg-after")); got[len(got)-1] != "completed" {
		t.Errorf("valid command after the invalid ones: %v", got)
	}
	// Rejections are final (never redelivered), and each rejected command
	// is kept as a dead letter of code "rejected", to be fixed and
	// replayed.
	dls := e.dlq.waitFor(t, "the rejected commands kept", 10*time.Second, func(ms []received) bool { return len(ms) >= len(tests) })
	time.Sleep(200 * time.Millisecond)
	if n := len(e.dlq.all()); n != len(tests) {
		t.Errorf("dead letters = %d, want %d", n, len(tests))
	}
	for _, dl := range dls {
		if dl.Header.Get(handlers.HeaderErrorCode) != handlers.DLQRejected || dl.Header.Get(handlers.HeaderHandler) != handlers.IntakeName ||
			!strings.HasPrefix(dl.Header.Get(handlers.HeaderReason), "rejected: ") || dl.Header.Get(handlers.HeaderOriginalSubject) != registerSubject {
			t.Errorf("dead letter of a rejected command: %v", dl.Header)
		}
	}
}

func TestTransientVendorFaultIsRetried(t *testing.T) {
	e := startEnv(t)
	e.sims.Resamania.Faults().FailNext(3, 503)
	publish(t, e.js, registerSubject, "", e.register("reg-flaky", "acme", "flaky@example.com", ""))

	if got, want := types(e.terminal("reg-flaky")), []string{"resamania.contact_created", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	failed := 0
	for _, r := range e.sims.Resamania.Requests() {
		if r.Status == 503 {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("503 answers = %d, want 3", failed)
	}
	if n := len(e.dlq.all()); n != 0 {
		t.Errorf("dead letters = %d, want 0", n)
	}
}

func TestTransientFaultBeyondBudgetIsDeadLettered(t *testing.T) {
	e := startEnv(t, withRetryBudget(300*time.Millisecond))
	e.sims.Resamania.Faults().FailNext(1_000_000, 503)
	start := time.Now()
	publish(t, e.js, registerSubject, "cmd-down", e.register("reg-down", "acme", "down@example.com", ""))

	msgs := e.dlq.waitFor(t, "a dead letter", 20*time.Second, func(ms []received) bool { return len(ms) > 0 })
	dl := msgs[0]
	h := dl.Header
	if dl.Subject != events.DeadLetterSubjectPrefix+"resamania-lookup" {
		t.Errorf("dead letter subject = %s", dl.Subject)
	}
	checks := map[string]string{
		handlers.HeaderOriginalSubject: "registrar.step.resamania.lookup",
		handlers.HeaderHandler:         "resamania-lookup",
		handlers.HeaderErrorCode:       handlers.DLQVendorUnavailable,
		handlers.HeaderRegistrationID:  "reg-down",
		handlers.HeaderFlow:            events.CmdResamaniaRegister,
		handlers.HeaderTenant:          "acme",
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(h.Get(handlers.HeaderReason), "503") {
		t.Errorf("reason %q does not say what failed", h.Get(handlers.HeaderReason))
	}
	if n, _ := strconv.Atoi(h.Get(handlers.HeaderAttempts)); n < 2 {
		t.Errorf("attempts = %q, want several", h.Get(handlers.HeaderAttempts))
	}
	first, err1 := time.Parse(time.RFC3339Nano, h.Get(handlers.HeaderFirstFailure))
	last, err2 := time.Parse(time.RFC3339Nano, h.Get(handlers.HeaderLastFailure))
	if err1 != nil || err2 != nil || first.Before(start.Add(-time.Second)) || last.Before(first) {
		t.Errorf("failure times first=%q last=%q", h.Get(handlers.HeaderFirstFailure), h.Get(handlers.HeaderLastFailure))
	}
	if h.Get(handlers.HeaderOriginalMsgID) == "" || h.Get(nats.MsgIdHdr) == h.Get(handlers.HeaderOriginalMsgID) {
		t.Errorf("dead letter ids: Nats-Msg-Id %q original %q", h.Get(nats.MsgIdHdr), h.Get(handlers.HeaderOriginalMsgID))
	}
	// The flow waits for a replay: no terminal event, status suspended.
	for _, r := range e.events.of("reg-down") {
		if isTerminal(r.Event.Type) {
			t.Errorf("terminal event %s for a dead-lettered flow", r.Event.Type)
		}
	}
	f, err := e.svc.Store().Flow(t.Context(), "reg-down")
	if err != nil || f.Status != "suspended" {
		t.Fatalf("flow status = %v (%v), want suspended", f.Status, err)
	}

	// Replaying the dead letter (a new message id) after the vendor is
	// back resumes the flow where it stopped.
	e.sims.Resamania.Faults().FailNext(0, 0)
	replay := nats.NewMsg(h.Get(handlers.HeaderOriginalSubject))
	replay.Data = dl.Data
	replay.Header.Set(nats.MsgIdHdr, "replay-1")
	if _, err := e.js.PublishMsg(t.Context(), replay); err != nil {
		t.Fatal(err)
	}
	if got, want := types(e.terminal("reg-down")), []string{"resamania.contact_created", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("after replay: events = %v, want %v", got, want)
	}
}
