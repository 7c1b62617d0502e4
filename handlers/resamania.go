package handlers

import (
	"context"
	"fmt"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Resamania step names. They are durable consumer names: never rename.
const (
	StepResamaniaLookup = "resamania.lookup"
	StepResamaniaCreate = "resamania.create"
)

// ResamaniaAPI is what the Resamania steps need from a vendor client.
type ResamaniaAPI interface {
	FindContactsByEmail(ctx context.Context, s resamania.Scope, email string) ([]resamania.Contact, error)
	CreateContact(ctx context.Context, s resamania.Scope, in resamania.NewContact) (resamania.Contact, error)
}

// ResamaniaClients returns the client of a tenant's Resamania account.
type ResamaniaClients func(tenant string) (ResamaniaAPI, error)

// registerCommand reads the flow's register command and the client of its
// tenant's Resamania account.
func registerCommand(r *Run, clients ResamaniaClients) (*events.ResamaniaRegister, ResamaniaAPI, error) {
	var cmd events.ResamaniaRegister
	if err := r.Command(&cmd); err != nil {
		return nil, nil, err
	}
	api, err := clients(r.Flow.Tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("resamania client of tenant %s: %w", r.Flow.Tenant, err)
	}
	return &cmd, api, nil
}

// resamaniaScope is the club a register command works in.
func resamaniaScope(cmd *events.ResamaniaRegister) resamania.Scope {
	return resamania.Scope{ClubID: cmd.ClubID, NetworkNodeID: cmd.NetworkNodeID}
}

// contactEvent converts a vendor contact to its event form.
func contactEvent(c resamania.Contact) events.ResamaniaContact {
	return events.ResamaniaContact{
		ID:         c.ID,
		Number:     c.Number,
		Email:      c.Email,
		GivenName:  c.GivenName,
		FamilyName: c.FamilyName,
		BirthDate:  c.BirthDate,
		Gender:     c.Gender,
		State:      c.State,
		ClubID:     c.ClubID,
		Mobile:     c.Mobile,
	}
}

// resamaniaFound ends a register flow with a contact that already exists.
func resamaniaFound(c resamania.Contact, outcome string) Transition {
	ev := contactEvent(c)
	return Transition{
		Outcome:  outcome,
		Events:   []events.Event{&events.ResamaniaContactFound{Contact: ev}},
		Terminal: &events.Completed{Result: events.ResamaniaResult{ContactID: c.ID, ContactNumber: c.Number, ClubID: c.ClubID, Created: false}},
	}
}
