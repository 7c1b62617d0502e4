package service_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors/engage"
)

var upsertSubject = events.CommandSubject(events.CmdEngageUpsert)

func upsert(id, email, attrs string) []byte {
	return []byte(fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","identifier":{"type":"EMAIL","value":%q},"attributes":{%s}}`, id, email, attrs))
}

func TestEngageCreatesAMissingContact(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, upsertSubject, "", upsert("en-new", "new.lead@example.com", `"FirstName":"Ada"`))
	evs := e.terminal("en-new")
	if got := types(evs); !slices.Equal(got, []string{"engage.contact_created", "completed"}) {
		t.Fatalf("events = %v (%s)", got, evs[len(evs)-1].Data)
	}
	if r := evs[1].Event.Result; r["created"] != true || r["contactId"] == nil {
		t.Errorf("result = %v", r)
	}
	if n := len(e.sims.Engage.Contacts()); n != 1 {
		t.Errorf("contacts at the simulator = %d, want 1", n)
	}
}

func TestEngageUpdatesAnExistingContactMergingAttributes(t *testing.T) {
	e := startEnv(t)
	existing := e.sims.Engage.AddContact(engage.Contact{EmailAddress: "known@example.com",
		Attributes: []engage.Attribute{{Name: "FirstName", Value: "Old"}, {Name: "LastName", Value: "Kept"}}})
	publish(t, e.js, upsertSubject, "", upsert("en-upd", "known@example.com", `"FirstName":"New"`))
	evs := e.terminal("en-upd")
	if got := types(evs); !slices.Equal(got, []string{"engage.contact_updated", "completed"}) {
		t.Fatalf("events = %v (%s)", got, evs[len(evs)-1].Data)
	}
	var got engage.Contact
	for _, c := range e.sims.Engage.Contacts() {
		if c.ID == existing.ID {
			got = c
		}
	}
	attrs := map[string]string{}
	for _, a := range got.Attributes {
		attrs[a.Name] = a.Value
	}
	if attrs["FirstName"] != "New" || attrs["LastName"] != "Kept" {
		t.Errorf("attributes after the update = %v, want FirstName updated and LastName kept", attrs)
	}
	if n := e.sims.Engage.CountRequests("POST", "/api/rest/v19/contact/create"); n != 0 {
		t.Errorf("creations = %d, want 0", n)
	}
}

func TestEngageBadCredentialsFailWithAMessageAboutThem(t *testing.T) {
	e := startEnv(t)
	e.stop()
	bad := *e.sims.EngageTenant()
	bad.Password = secret.New("wrong")
	t2 := e.cfg.Tenants["acme"]
	t2.Engage = &bad
	e.cfg.Tenants["acme"] = t2
	e.start()
	publish(t, e.js, upsertSubject, "", upsert("en-403", "x@example.com", ""))
	evs := e.terminal("en-403")
	last := evs[len(evs)-1].Event
	if last.Type != "failed" || last.Error.Code != events.CodeVendorRejected || last.Error.VendorStatus != 403 ||
		!contains(last.Error.Message, "tenants.acme.engage.username") {
		t.Fatalf("events = %v, last %+v", types(evs), last.Error)
	}
}

func TestEngageLowercaseIdentifierTypeIsRejectedNeverSent(t *testing.T) {
	e := startEnv(t)
	publish(t, e.js, upsertSubject, "", []byte(`{"registrationId":"en-lc","tenant":"acme","identifier":{"type":"email","value":"x@example.com"}}`))
	evs := e.terminal("en-lc")
	if evs[0].Event.Type != "rejected" || evs[0].Event.Errors[0].Field != "identifier.type" {
		t.Fatalf("events = %v %s", types(evs), evs[0].Data)
	}
	if n := len(e.sims.Engage.Requests()); n != 0 {
		t.Errorf("requests to Engage = %d, want 0", n)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
