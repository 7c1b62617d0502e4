package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors"
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
	SearchNetworkContacts(ctx context.Context, s resamania.Scope, email string) ([]resamania.NetworkContact, error)
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

// resamaniaFailure maps a permanent Resamania refusal that no step handled
// itself to the failed event's error, keeping the vendor's status and code.
func resamaniaFailure(err error, tenant string) events.ErrorInfo {
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		return vendorErrorInfo(events.CodeVendorRejected, err)
	}
	switch {
	case ve.Code == resamania.CodeResourceNotAccessible || ve.Code == resamania.CodeUnauthorizedEndpoint || ve.Status == http.StatusForbidden:
		info := vendorErrorInfo(events.CodeAccessDenied, err)
		info.Message = "the Resamania account may not do this: network data-sharing rules or the OAuth client's scope deny it (" + ve.Code + ")"
		return info
	case ve.Code == resamania.CodeClubNotValid || ve.Code == resamania.CodeContactNotValid:
		return vendorErrorInfo(events.CodeContactNotTransferable, err)
	case ve.Code == resamania.CodeValidation:
		return requiredFields(err)
	case ve.Status == http.StatusUnauthorized:
		info := vendorErrorInfo(events.CodeVendorRejected, err)
		info.Message = fmt.Sprintf("Resamania refused the credentials (401): check tenants.%s.resamania.clientId, clientSecret and apiKey", tenant)
		return info
	case ve.Status == http.StatusNotFound:
		info := vendorErrorInfo(events.CodeVendorRejected, err)
		info.Message = fmt.Sprintf("Resamania does not know a resource of the request (404): check the IRIs of the command (club, network node, contact) and tenants.%s.resamania.baseURL and clientToken", tenant)
		return info
	}
	return vendorErrorInfo(events.CodeVendorRejected, err)
}

// requiredFields is the failed event's error for the vendor's "required"
// violations, naming the fields as the command spells them.
func requiredFields(err error) events.ErrorInfo {
	info := vendorErrorInfo(events.CodeRequiredFields, err)
	info.Message = "the club requires fields the command did not give"
	for i := range info.Fields {
		info.Fields[i].Field = "contact." + info.Fields[i].Field
	}
	return info
}
