package handlers

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/engage"
)

// fakeEngage is a hand-written Engage whose create meets a contact that
// appeared after the look-up (another flow won the race).
type fakeEngage struct{ updates int }

func (f *fakeEngage) GetContact(context.Context, engage.Identifier) (engage.Contact, error) {
	return engage.Contact{}, vendors.ErrNotFound
}

func (f *fakeEngage) CreateContact(context.Context, engage.Contact) (engage.Contact, error) {
	return engage.Contact{}, &vendors.Error{Vendor: "engage", Op: "contact.create", Kind: vendors.Permanent, Status: 400, Code: engage.CodeObjectAlreadyExists}
}

func (f *fakeEngage) UpdateContact(context.Context, engage.Identifier, engage.Contact) (engage.Contact, error) {
	f.updates++
	return engage.Contact{ID: 7}, nil
}

func TestEngageCreateThatMeetsAnExistingContactUpdatesIt(t *testing.T) {
	api := &fakeEngage{}
	h := NewEngageUpsert(func(string) (EngageAPI, error) { return api, nil })
	cmd, _ := json.Marshal(map[string]any{"registrationId": "r", "tenant": "acme",
		"identifier": map[string]string{"type": "EMAIL", "value": "x@example.com"}, "attributes": map[string]string{"FirstName": "A"}})
	run := &Run{Flow: store.Flow{RegistrationID: "r", Flow: events.CmdEngageUpsert, Tenant: "acme"}, Data: &flowData{Command: cmd}}
	tr, err := h.create(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	if api.updates != 1 || len(tr.Events) != 1 || tr.Events[0].EventType() != events.EvtEngageContactUpdated {
		t.Fatalf("transition = %+v after %d updates", tr, api.updates)
	}
	if res := tr.Terminal.(*events.Completed).Result.(events.EngageResult); res.ContactID != 7 || res.Created {
		t.Errorf("result = %+v", res)
	}
}
