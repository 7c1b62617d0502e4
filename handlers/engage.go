package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/engage"
)

// Mapp Engage step names (durable consumer names: never rename).
const (
	StepEngageLookup = "engage.lookup"
	StepEngageCreate = "engage.create"
	StepEngageUpdate = "engage.update"
)

const varEngage = "engage"

// EngageAPI is what the upsert needs from an Engage client.
type EngageAPI interface {
	GetContact(ctx context.Context, id engage.Identifier) (engage.Contact, error)
	CreateContact(ctx context.Context, in engage.Contact) (engage.Contact, error)
	UpdateContact(ctx context.Context, id engage.Identifier, in engage.Contact) (engage.Contact, error)
}

// EngageClients returns the Engage client of a tenant.
type EngageClients func(tenant string) (EngageAPI, error)

// EngageUpsert creates or updates a marketing contact (seed 003): look it
// up by its identifier; create it when missing, or update its attributes
// (merged by name) when found. A creation that meets an existing contact
// (another flow won the race) updates it instead.
type EngageUpsert struct {
	clients EngageClients
}

// NewEngageUpsert returns the upsert steps.
func NewEngageUpsert(clients EngageClients) *EngageUpsert { return &EngageUpsert{clients: clients} }

// Steps returns the steps.
func (h *EngageUpsert) Steps() []Step {
	return []Step{{Name: StepEngageLookup, Run: h.lookup}, {Name: StepEngageCreate, Run: h.create}, {Name: StepEngageUpdate, Run: h.update}}
}

func (h *EngageUpsert) load(r *Run) (*events.EngageUpsert, EngageAPI, error) {
	var cmd events.EngageUpsert
	if err := r.Command(&cmd); err != nil {
		return nil, nil, err
	}
	api, err := h.clients(r.Flow.Tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("engage client of tenant %s: %w", r.Flow.Tenant, err)
	}
	return &cmd, api, nil
}

func engageID(cmd *events.EngageUpsert) engage.Identifier {
	return engage.Identifier{Type: cmd.Identifier.Type, Value: cmd.Identifier.Value}
}

// contactOf is the contact the command describes.
func contactOf(cmd *events.EngageUpsert) engage.Contact {
	c := engage.Contact{EmailAddress: cmd.EmailAddress, MobileNumber: cmd.MobileNumber}
	// The identifier is also one of the contact's fields.
	switch cmd.Identifier.Type {
	case events.IdentifierEmail:
		if c.EmailAddress == "" {
			c.EmailAddress = cmd.Identifier.Value
		}
	case events.IdentifierMobile:
		if c.MobileNumber == "" {
			c.MobileNumber = cmd.Identifier.Value
		}
	case events.IdentifierAppAlias:
		c.ApplicationAlias = cmd.Identifier.Value
	}
	names := make([]string, 0, len(cmd.Attributes))
	for n := range cmd.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.Attributes = append(c.Attributes, engage.Attribute{Name: n, Value: cmd.Attributes[n]})
	}
	return c
}

func (h *EngageUpsert) lookup(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	c, err := api.GetContact(ctx, engageID(cmd))
	switch {
	case errors.Is(err, vendors.ErrNotFound):
		return Transition{Outcome: "not_found", Next: StepEngageCreate}, nil
	case err != nil:
		return Transition{}, err
	}
	return Transition{Outcome: "found", Next: StepEngageUpdate, Vars: map[string]any{varEngage: c.ID}}, nil
}

func (h *EngageUpsert) create(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	c, err := api.CreateContact(ctx, contactOf(cmd))
	if engage.IsAlreadyExists(err) {
		// Created meanwhile — by a concurrent flow, or by this step before
		// a crash: update it instead.
		return h.update(ctx, r)
	}
	if err != nil {
		return Transition{}, err
	}
	return Transition{Outcome: "created",
		Events:   []events.Event{&events.EngageContactCreated{ContactID: c.ID, Identifier: cmd.Identifier}},
		Terminal: &events.Completed{Result: events.EngageResult{ContactID: c.ID, Created: true}}}, nil
}

func (h *EngageUpsert) update(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	in := contactOf(cmd)
	c, err := api.UpdateContact(ctx, engageID(cmd), in)
	if err != nil {
		return Transition{}, err
	}
	if c.ID == 0 {
		if _, err := r.Var(varEngage, &c.ID); err != nil {
			return Transition{}, err
		}
	}
	names := make([]string, len(in.Attributes))
	for i, a := range in.Attributes {
		names[i] = a.Name
	}
	return Transition{Outcome: "updated",
		Events:   []events.Event{&events.EngageContactUpdated{ContactID: c.ID, Identifier: cmd.Identifier, Attributes: names}},
		Terminal: &events.Completed{Result: events.EngageResult{ContactID: c.ID, Created: false}}}, nil
}

// engageFailure is the failed event's error for a permanent Engage refusal.
func engageFailure(err error, tenant string) events.ErrorInfo {
	info := vendorErrorInfo(events.CodeVendorRejected, err)
	var ve *vendors.Error
	if errors.As(err, &ve) && ve.Status == http.StatusForbidden {
		info.Message = fmt.Sprintf("Mapp Engage refused the API user (403): check tenants.%s.engage.username and password, and the user's permissions", tenant)
	}
	return info
}
