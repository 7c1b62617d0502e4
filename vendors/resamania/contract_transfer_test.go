package resamania

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// The contract of the prospect transfer (migration request + SMS code),
// the contact migration and the sale update: the client against the
// simulator over HTTP.

// seededID returns the IRI of the seeded contact with email.
func seededID(t *testing.T, h *harness, email string) string {
	t.Helper()
	for _, c := range h.sim.Contacts("demoapi") {
		if c.Email == email {
			return c.ID
		}
	}
	t.Fatalf("no contact %s", email)
	return ""
}

// code reads the SMS code of a signature request from the simulator's
// outbox, as the person would from their phone.
func code(t *testing.T, h *harness, requestID string) string {
	t.Helper()
	c, ok := h.sim.LastCode(requestID)
	if !ok || len(c) != smsCodeDigits {
		t.Fatalf("no SMS code for %s: %q", requestID, c)
	}
	return c
}

// wrongCode is a code that is not c.
func wrongCode(c string) string {
	if c[0] == '9' {
		return "0" + c[1:]
	}
	return string(c[0]+1) + c[1:]
}

// requestsOf returns the logged requests of method and route.
func requestsOf(h *harness, method, route string) []Request {
	var out []Request
	for _, r := range h.sim.Requests() {
		if r.Method == method && r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

func TestContractTransfer(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()

	// [Source club] identify the contact.
	found, err := h.client.SearchNetworkContacts(ctx, lyon, justine)
	if err != nil || len(found) != 1 || found[0].ClubID != lyon.ClubID {
		t.Fatalf("network search: %+v %v", found, err)
	}
	src := found[0]

	// [Destination club] initialise: an SMS goes to the contact.
	sr, err := h.client.RequestContactMigration(ctx, paris, src.ID, paris.ClubID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sr.ID, "/demoapi/signature_requests/") || sr.State != SignatureCreated || !slices.Equal(sr.TargetIDs, []string{paris.ClubID}) ||
		sr.ResultTargetID != "" {
		t.Fatalf("signature request = %+v", sr)
	}
	sms := h.sim.SMS()
	if len(sms) != 1 || sms[0].To != "+33612341615" || sms[0].SignatureRequestID != sr.ID || sms[0].ClientToken != "demoapi" {
		t.Fatalf("SMS outbox = %+v", sms)
	}

	// [Destination club] validate with the code.
	v, err := h.client.ValidateSignatureRequest(ctx, paris, sr.ID, code(t, h, sr.ID))
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != sr.ID || v.State != SignatureValidated || !slices.Equal(v.TargetIDs, []string{paris.ClubID}) ||
		!strings.HasPrefix(v.ResultTargetID, "/demoapi/contacts/") || v.ResultTargetID == src.ID {
		t.Fatalf("validated = %+v", v)
	}

	// [Destination club] the new contact.
	nc, err := h.client.GetContact(ctx, paris, v.ResultTargetID)
	if err != nil {
		t.Fatal(err)
	}
	if nc.ID != v.ResultTargetID || nc.ClubID != paris.ClubID || nc.State != StateProspect || nc.Email != justine ||
		nc.GivenName != "Justine" || nc.FamilyName != "Doe" || nc.BirthDate != "1992-04-22" || nc.Mobile != "+33612341615" ||
		nc.Number == "" || nc.Number == src.Number {
		t.Fatalf("new contact = %+v", nc)
	}
	// The person is now found in Paris only; the old record is archived.
	if got, err := h.client.FindContactsByEmail(ctx, lyon, justine); err != nil || len(got) != 0 {
		t.Fatalf("Lyon still finds her: %+v %v", got, err)
	}
	if got, err := h.client.SearchNetworkContacts(ctx, lyon, justine); err != nil || len(got) != 1 || got[0].ID != nc.ID {
		t.Fatalf("network search after the transfer: %+v %v", got, err)
	}
	if old, err := h.client.GetContact(ctx, lyon, src.ID); err != nil || old.ClubID != lyon.ClubID {
		t.Fatalf("the archived record: %+v %v", old, err)
	}
	_, err = h.client.RequestContactMigration(ctx, Scope{ClubID: "/demoapi/clubs/1359"}, src.ID, "/demoapi/clubs/1359")
	if ve := vendorError(t, err, vendors.Permanent, 400); !IsContactNotValid(err) || ve.Op != OpRequestMigration {
		t.Fatalf("second transfer of the same record: %+v", ve)
	}

	// One POST /contact_migration_requests, with the destination's headers.
	reqs := requestsOf(h, http.MethodPost, "/contact_migration_requests")
	if len(reqs) != 2 || reqs[0].Status != 201 || reqs[0].ClubID != paris.ClubID || reqs[0].NetworkNodeID != paris.NetworkNodeID ||
		reqs[0].Grant != GrantClientCredentials {
		t.Fatalf("migration requests logged = %+v", reqs)
	}
	tr := requestsOf(h, http.MethodPost, "/signature_requests/{id}/transitions")
	if len(tr) != 1 || tr[0].Status != 201 || tr[0].ClubID != paris.ClubID || tr[0].Path != env+sr.ID+"/transitions" {
		t.Fatalf("transitions logged = %+v", tr)
	}
	if n := h.sim.CountResponses(http.MethodGet, "/contacts/{id}", 200); n != 2 {
		t.Fatalf("GET /contacts/{id} answered 200 %d times, want 2", n)
	}
}

func TestContractTransferWrongCodeThenRight(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	sr, err := h.client.RequestContactMigration(ctx, paris, seededID(t, h, justine), paris.ClubID)
	if err != nil {
		t.Fatal(err)
	}
	c := code(t, h, sr.ID)
	for _, wrong := range []string{wrongCode(c), ""} {
		_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, wrong)
		ve := vendorError(t, err, vendors.Permanent, 400)
		if !IsInvalidCode(err) || ve.Code != CodeInvalidCode || ve.Op != OpSignatureTransition || vendors.IsRetryable(err) {
			t.Fatalf("wrong code %q: %+v", wrong, ve)
		}
	}
	v, err := h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c)
	if err != nil || v.State != SignatureValidated || v.ResultTargetID == "" {
		t.Fatalf("right code after wrong ones: %+v %v", v, err)
	}
	if n := len(h.sim.SMS()); n != 1 {
		t.Fatalf("%d SMS, want 1: a wrong code sends no new one", n)
	}
}

func TestContractTransferCancel(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	src := seededID(t, h, justine)
	sr, err := h.client.RequestContactMigration(ctx, paris, src, paris.ClubID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.client.CancelSignatureRequest(ctx, paris, sr.ID)
	if err != nil || got.State != SignatureCancelled || got.ResultTargetID != "" {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, code(t, h, sr.ID))
	if vendorError(t, err, vendors.Permanent, 400); !IsSignatureNotPending(err) {
		t.Fatalf("validate after cancel: %v", err)
	}
	// Nothing moved: she is still in Lyon, and may start again.
	if c, err := h.client.FindContactsByEmail(ctx, lyon, justine); err != nil || len(c) != 1 || c[0].ID != src {
		t.Fatalf("after a cancel: %+v %v", c, err)
	}
	if _, err := h.client.RequestContactMigration(ctx, paris, src, paris.ClubID); err != nil {
		t.Fatalf("a new request after a cancel: %v", err)
	}
}

func TestContractTransitionOfValidatedRequest(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	sr, err := h.client.RequestContactMigration(ctx, paris, seededID(t, h, justine), paris.ClubID)
	if err != nil {
		t.Fatal(err)
	}
	c := code(t, h, sr.ID)
	if _, err := h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c); err != nil {
		t.Fatal(err)
	}
	before := len(h.sim.Contacts("demoapi"))
	_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c)
	if ve := vendorError(t, err, vendors.Permanent, 400); ve.Code != CodeSignatureNotPending || !IsSignatureNotPending(err) {
		t.Fatalf("validate twice: %+v", ve)
	}
	_, err = h.client.CancelSignatureRequest(ctx, paris, sr.ID)
	if vendorError(t, err, vendors.Permanent, 400); !IsSignatureNotPending(err) {
		t.Fatalf("cancel after validate: %v", err)
	}
	if after := len(h.sim.Contacts("demoapi")); after != before {
		t.Fatalf("%d contacts after the refused transitions, want %d", after, before)
	}
	_, err = h.client.ValidateSignatureRequest(ctx, paris, "/demoapi/signature_requests/1", c)
	if ve := vendorError(t, err, vendors.Permanent, 404); ve.Code != CodeNotFound {
		t.Fatalf("unknown request: %+v", ve)
	}
}

func TestContractTransferRefusals(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*SimConfig)
		contact func(*testing.T, *harness) string
		scope   Scope
		dest    string
		status  int    // 0: accepted
		code    string // the error's Code
	}{
		{"to the contact's own club", nil, func(t *testing.T, h *harness) string { return seededID(t, h, justine) },
			lyon, lyon.ClubID, 400, CodeClubNotValid},
		{"a client", nil, func(t *testing.T, h *harness) string { return seededID(t, h, johnPlus) },
			lyon, lyon.ClubID, 400, CodeContactNotValid},
		{"a temp contact", nil, func(t *testing.T, h *harness) string {
			return h.sim.AddContact("demoapi", Contact{Email: "t@example.com", State: StateTemp, ClubID: lyon.ClubID, Mobile: "+33600000001"}).ID
		}, paris, paris.ClubID, 400, CodeContactNotValid},
		{"an old client", nil, func(t *testing.T, h *harness) string {
			return h.sim.AddContact("demoapi", Contact{Email: "o@example.com", State: StateOldClient, ClubID: lyon.ClubID, Mobile: "+33600000002"}).ID
		}, paris, paris.ClubID, 0, ""},
		{"from a club the network hides the contact from", func(c *SimConfig) { c.Accounts[0].Clubs[0].NoSharing = true },
			func(t *testing.T, h *harness) string { return seededID(t, h, justine) }, paris, paris.ClubID, 400, CodeResourceNotAccessible},
		{"from the network node above it", func(c *SimConfig) { c.Accounts[0].Clubs[0].NoSharing = true },
			func(t *testing.T, h *harness) string { return seededID(t, h, justine) }, network, paris.ClubID, 0, ""},
		{"unknown contact", nil, func(*testing.T, *harness) string { return "/demoapi/contacts/1" }, paris, paris.ClubID, 404, CodeNotFound},
		{"unknown club", nil, func(t *testing.T, h *harness) string { return seededID(t, h, justine) },
			network, "/demoapi/clubs/9", 404, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.edit)
			sr, err := h.client.RequestContactMigration(t.Context(), tt.scope, tt.contact(t, h), tt.dest)
			if tt.status == 0 {
				if err != nil || sr.State != SignatureCreated {
					t.Fatalf("%+v %v", sr, err)
				}
				return
			}
			if ve := vendorError(t, err, vendors.Permanent, tt.status); ve.Code != tt.code {
				t.Fatalf("error = %+v, want %s", ve, tt.code)
			}
			if n := len(h.sim.SMS()); n != 0 {
				t.Fatalf("a refused request sent %d SMS", n)
			}
		})
	}
}

func TestContractInvalidArgumentsSendNothing(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	justineID := seededID(t, h, justine)
	calls := []struct {
		name string
		call func() error
	}{
		{"bare contact id", func() error {
			_, err := h.client.RequestContactMigration(ctx, paris, "2974000", paris.ClubID)
			return err
		}},
		{"bare club id", func() error {
			_, err := h.client.RequestContactMigration(ctx, Scope{}, justineID, "1357")
			return err
		}},
		{"scope of another club than the destination", func() error {
			_, err := h.client.RequestContactMigration(ctx, lyon, justineID, paris.ClubID)
			return err
		}},
		{"bare request id", func() error {
			_, err := h.client.ValidateSignatureRequest(ctx, paris, "455000", "123456")
			return err
		}},
		{"request IRI of another account", func() error {
			_, err := h.client.CancelSignatureRequest(ctx, paris, "/other/signature_requests/455000")
			return err
		}},
		{"contact IRI for a request", func() error {
			_, err := h.client.CancelSignatureRequest(ctx, paris, justineID)
			return err
		}},
		{"get with a bare id", func() error {
			_, err := h.client.GetContact(ctx, paris, "2974000")
			return err
		}},
		{"migrate with a bare target", func() error {
			return h.client.MigrateContact(ctx, paris, justineID, "2974001", paris.ClubID)
		}},
		{"migrate with a bare club", func() error {
			return h.client.MigrateContact(ctx, paris, justineID, justineID, "1357")
		}},
		{"sale IRI", func() error { return h.client.UpdateSaleContact(ctx, paris, "/demoapi/sales/33") }},
		{"sale id not a number", func() error { return h.client.UpdateSaleContact(ctx, paris, "+33") }},
		{"sale id zero", func() error { return h.client.UpdateSaleContact(ctx, paris, "0") }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if ve := vendorError(t, err, vendors.Permanent, 0); ve.Code != "invalid_argument" {
				t.Fatalf("error = %+v", ve)
			}
			if strings.Contains(err.Error(), "123456") {
				t.Fatalf("the error shows the code: %v", err)
			}
		})
	}
	if n := len(h.sim.Requests()); n != 0 {
		t.Fatalf("%d requests sent, want none", n)
	}
}

// setUpMigration creates a temp contact in Paris for Justine (a prospect
// of Lyon), with her e-mail, and sale 33 for it.
func setUpMigration(t *testing.T, h *harness) (source string, temp Contact) {
	t.Helper()
	in := NewContact{FamilyName: "Temp", GivenName: "Person", BirthDate: "2001-01-01", Email: justine, State: StateTemp}
	temp, err := h.client.CreateContact(t.Context(), paris, in)
	if err != nil {
		t.Fatalf("a temp contact with a used e-mail: %v", err)
	}
	if temp.State != StateTemp || temp.ClubID != paris.ClubID {
		t.Fatalf("temp contact = %+v", temp)
	}
	if sale := h.sim.AddSale("demoapi", SimSale{ID: 33, ContactID: temp.ID}); sale.ID != 33 || sale.ContactFamilyName != "Temp" {
		t.Fatalf("sale = %+v", sale)
	}
	return seededID(t, h, justine), temp
}

func TestContractTempContactMayReuseAnEmail(t *testing.T) {
	h := newHarness(t, nil)
	setUpMigration(t, h)
	// The rule still binds the others: a prospect with that e-mail is refused.
	in := newPerson
	in.Email = justine
	if _, err := h.client.CreateContact(t.Context(), paris, in); !IsEmailAlreadyUsed(err) {
		t.Fatalf("a prospect with a used e-mail: %v", err)
	}
	// A second temp contact with it is fine too.
	in.State = StateTemp
	if _, err := h.client.CreateContact(t.Context(), lyon, in); err != nil {
		t.Fatalf("a second temp contact: %v", err)
	}
}

func TestContractMigrateAndUpdateSale(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	source, temp := setUpMigration(t, h)

	asSource := h.client.As(ContactCredentials(justine))
	if err := asSource.MigrateContact(ctx, lyon, source, temp.ID, paris.ClubID); err != nil {
		t.Fatal(err)
	}
	reqs := requestsOf(h, http.MethodPut, "/contacts/{id}/migrate")
	if len(reqs) != 1 || reqs[0].Status != 204 || reqs[0].Grant != GrantContactCredentials || reqs[0].Path != env+source+"/migrate" {
		t.Fatalf("migrations logged = %+v", reqs)
	}

	got, err := h.client.GetContact(ctx, paris, temp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != temp.ID || got.Number != temp.Number || got.State != StateTemp || got.ClubID != paris.ClubID ||
		got.GivenName != "Justine" || got.FamilyName != "Doe" || got.BirthDate != "1992-04-22" || got.Gender != "female" ||
		got.Mobile != "+33612341615" {
		t.Fatalf("target after the migration = %+v", got)
	}
	// The source is left as it was.
	if src, err := h.client.GetContact(ctx, lyon, source); err != nil || src.State != StateProspect || src.ClubID != lyon.ClubID {
		t.Fatalf("source after the migration = %+v %v", src, err)
	}

	if err := h.client.UpdateSaleContact(ctx, paris, "33"); err != nil {
		t.Fatal(err)
	}
	sales := h.sim.Sales("demoapi")
	want := SimSaleState{ID: 33, ContactID: temp.ID, ContactNumber: temp.Number, ContactFamilyName: "Doe", ContactGivenName: "Justine"}
	if len(sales) != 1 || sales[0] != want {
		t.Fatalf("sales = %+v, want %+v", sales, want)
	}
	if n := h.sim.CountResponses(http.MethodPut, "/sale/{id}/update_contact", 204); n != 1 {
		t.Fatalf("update_contact answered 204 %d times", n)
	}

	err = h.client.UpdateSaleContact(ctx, paris, "999")
	if ve := vendorError(t, err, vendors.Permanent, 404); ve.Code != CodeNotFound || ve.Op != OpUpdateSaleContact {
		t.Fatalf("unknown sale: %+v", ve)
	}

	// Repeating the migration (a retry after a lost reply) is accepted.
	if err := asSource.MigrateContact(ctx, lyon, source, temp.ID, paris.ClubID); err != nil {
		t.Fatalf("the same migration again: %v", err)
	}
}

func TestContractMigrateRefusals(t *testing.T) {
	tests := []struct {
		name   string
		grant  func(source string) Grant
		setup  func(*testing.T, *harness) (source, target, club string)
		status int
		code   string
	}{
		{"client grant", func(string) Grant { return ClientCredentials() }, nil, 403, CodeUnauthorizedEndpoint},
		{"another contact's grant", func(string) Grant { return ContactCredentials(johnPlus) }, nil, 403, CodeUnauthorizedEndpoint},
		{"club grant", func(string) Grant { return ClubCredentials(lyon.ClubID) }, nil, 403, CodeUnauthorizedEndpoint},
		{"target not temp", nil, func(t *testing.T, h *harness) (string, string, string) {
			p := h.sim.AddContact("demoapi", Contact{Email: "p@example.com", State: StateProspect, ClubID: paris.ClubID})
			return seededID(t, h, justine), p.ID, paris.ClubID
		}, 400, CodeContactNotValid},
		{"source not a prospect", func(string) Grant { return ContactCredentials(johnPlus) }, func(t *testing.T, h *harness) (string, string, string) {
			tmp := h.sim.AddContact("demoapi", Contact{Email: johnPlus, State: StateTemp, ClubID: lyon.ClubID})
			return seededID(t, h, johnPlus), tmp.ID, lyon.ClubID
		}, 400, CodeContactNotValid},
		{"target in the source's club", nil, func(t *testing.T, h *harness) (string, string, string) {
			tmp := h.sim.AddContact("demoapi", Contact{Email: justine, State: StateTemp, ClubID: lyon.ClubID})
			return seededID(t, h, justine), tmp.ID, lyon.ClubID
		}, 400, CodeClubNotValid},
		{"targetClubId not the target's club", nil, func(t *testing.T, h *harness) (string, string, string) {
			source, temp := setUpMigration(t, h)
			return source, temp.ID, "/demoapi/clubs/1359"
		}, 400, CodeClubNotValid},
		{"unknown target", nil, func(t *testing.T, h *harness) (string, string, string) {
			return seededID(t, h, justine), "/demoapi/contacts/1", paris.ClubID
		}, 404, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			var source, target, club string
			if tt.setup != nil {
				source, target, club = tt.setup(t, h)
			} else {
				var temp Contact
				source, temp = setUpMigration(t, h)
				target, club = temp.ID, paris.ClubID
			}
			g := ContactCredentials(justine)
			if tt.grant != nil {
				g = tt.grant(source)
			}
			before := h.sim.Contacts("demoapi")
			err := h.client.As(g).MigrateContact(t.Context(), lyon, source, target, club)
			if ve := vendorError(t, err, vendors.Permanent, tt.status); ve.Code != tt.code || ve.Op != OpMigrateContact {
				t.Fatalf("error = %+v, want %s", ve, tt.code)
			}
			if after := h.sim.Contacts("demoapi"); !contactsEqual(before, after) {
				t.Fatalf("a refused migration changed contacts:\n%+v\n%+v", before, after)
			}
		})
	}
}

func contactsEqual(a, b []Contact) bool {
	return slices.EqualFunc(a, b, func(x, y Contact) bool {
		xa, ya := x.Address, y.Address
		x.Address, y.Address = nil, nil
		return x == y && (xa == nil) == (ya == nil) && (xa == nil || *xa == *ya)
	})
}

func TestContractSMSCodeNeverLeaks(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	sr, err := h.client.RequestContactMigration(ctx, paris, seededID(t, h, justine), paris.ClubID)
	if err != nil {
		t.Fatal(err)
	}
	c := code(t, h, sr.ID)
	var errs []error
	_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, wrongCode(c))
	errs = append(errs, err)
	h.sim.Faults().FailNext(1, 503)
	_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c)
	errs = append(errs, err)
	if _, err := h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.ValidateSignatureRequest(ctx, paris, sr.ID, c)
	errs = append(errs, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = h.client.ValidateSignatureRequest(cctx, paris, sr.ID, c)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d did not fail", i)
		}
		shown := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
		var ve *vendors.Error
		if errors.As(err, &ve) {
			shown = append(shown, fmt.Sprintf("%+v", *ve))
		}
		for _, s := range shown {
			if strings.Contains(s, c) {
				t.Fatalf("error %d shows the code: %s", i, s)
			}
		}
	}
	for _, r := range h.sim.Requests() {
		for _, s := range []string{r.Method, r.Path, r.Route, r.Query, r.ClientToken, r.ClubID, r.NetworkNodeID, r.Grant} {
			if strings.Contains(s, c) {
				t.Fatalf("request log entry shows the code: %+v", r)
			}
		}
	}
}

func TestContractDefaultRateLimiterAvoids429(t *testing.T) {
	// The simulator's gateway at its defaults: 1000 a minute, 30 per 100 ms.
	h := newHarness(t, func(c *SimConfig) { c.RateLimit = RateLimit{} })
	const calls = 100
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
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
	if n := h.sim.CountResponses("", "", http.StatusTooManyRequests); n != 0 {
		t.Fatalf("%d requests got 429", n)
	}
	// 101 requests at 30 per window (100 ms + jitter): at least 3 waits.
	if d := time.Since(start); d < 3*spikeArrestWindow {
		t.Fatalf("%d requests took %v: not spread", calls+1, d)
	}
}

func TestContractRateLimiterSharedByClientsOfOneKey(t *testing.T) {
	h := newHarness(t, func(c *SimConfig) { c.RateLimit = RateLimit{} })
	lim := NewRateLimiter(RateLimiterConfig{})
	a := h.newClient(t, demoConfig(h.srv.URL+env), WithRateLimiter(lim))
	b := h.newClient(t, demoConfig(h.srv.URL+env), WithRateLimiter(lim))
	var wg sync.WaitGroup
	for _, c := range []*Client{a, b, a.As(ClubCredentials(lyon.ClubID))} {
		for range 30 {
			wg.Go(func() {
				if _, err := c.FindContactsByEmail(t.Context(), Scope{ClubID: lyon.ClubID}, justine); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if n := h.sim.CountResponses("", "", http.StatusTooManyRequests); n != 0 {
		t.Fatalf("%d requests got 429", n)
	}
}

func TestContractWithoutRateLimitMeets429(t *testing.T) {
	// The control of the two tests above: the same burst, unpaced, goes
	// over the gateway's spike arrest.
	h := newHarness(t, func(c *SimConfig) { c.RateLimit = RateLimit{} }, WithoutRateLimit())
	if _, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	limited := make(chan bool, 200)
	for range 200 {
		wg.Go(func() {
			_, err := h.client.FindContactsByEmail(t.Context(), paris, johnPlus)
			limited <- err != nil && vendors.RetryAfterOf(err) > 0 && !vendors.IsPermanent(err)
		})
	}
	wg.Wait()
	close(limited)
	n := 0
	for l := range limited {
		if l {
			n++
		}
	}
	if n == 0 || h.sim.CountResponses("", "", http.StatusTooManyRequests) != n {
		t.Fatalf("%d RateLimited errors, %d 429s logged: want some, the same", n, h.sim.CountResponses("", "", 429))
	}
}
