package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Resamania migration step names (durable consumer names: never rename).
const (
	StepResamaniaMigrateTemp    = "resamania.migrate.temp"
	StepResamaniaMigrateContact = "resamania.migrate.contact"
	StepResamaniaSaleUpdate     = "resamania.sale.update"
)

const varMigration = "migration"

// migrationPlan is what a migration needs (seed 000, "customer already a
// prospect in a club"): the prospect (source) is migrated into a temporary
// contact (target) of the club the person registers in.
type migrationPlan struct {
	SourceContactID     string `json:"sourceContactId"`
	SourceEmail         string `json:"sourceEmail,omitempty"`
	SourceClubID        string `json:"sourceClubId,omitempty"`
	TargetContactID     string `json:"targetContactId,omitempty"`
	TargetClubID        string `json:"targetClubId"`
	TargetNetworkNodeID string `json:"targetNetworkNodeId,omitempty"`
	SaleID              string `json:"saleId,omitempty"`
}

func (p migrationPlan) target() resamania.Scope {
	return resamania.Scope{ClubID: p.TargetClubID, NetworkNodeID: p.TargetNetworkNodeID}
}

// ResamaniaMigrationAPI is what a migration needs from a vendor client.
type ResamaniaMigrationAPI interface {
	FindContactsByEmail(ctx context.Context, s resamania.Scope, email string) ([]resamania.Contact, error)
	CreateContact(ctx context.Context, s resamania.Scope, in resamania.NewContact) (resamania.Contact, error)
	GetContact(ctx context.Context, s resamania.Scope, contactID string) (resamania.Contact, error)
	// MigrateContactAs migrates, authenticated as the source contact (the
	// http://contactclientcredentials grant with its e-mail).
	MigrateContactAs(ctx context.Context, sourceEmail string, s resamania.Scope, sourceContactID, targetContactID, targetClubID string) error
	UpdateSaleContact(ctx context.Context, s resamania.Scope, saleID string) error
}

// ResamaniaMigrationClients returns the migration client of a tenant.
type ResamaniaMigrationClients func(tenant string) (ResamaniaMigrationAPI, error)

// ResamaniaMigration is the migration's three steps: create the temporary
// contact (register flows only), migrate the prospect into it as the
// prospect, refresh the sale.
type ResamaniaMigration struct {
	clients ResamaniaMigrationClients
}

// NewResamaniaMigration returns the migration steps.
func NewResamaniaMigration(clients ResamaniaMigrationClients) *ResamaniaMigration {
	return &ResamaniaMigration{clients: clients}
}

// Steps returns the three steps.
func (h *ResamaniaMigration) Steps() []Step {
	return []Step{
		{Name: StepResamaniaMigrateTemp, Run: h.temp},
		{Name: StepResamaniaMigrateContact, Run: h.migrate},
		{Name: StepResamaniaSaleUpdate, Run: h.sale},
	}
}

func (h *ResamaniaMigration) plan(r *Run) (migrationPlan, ResamaniaMigrationAPI, error) {
	var p migrationPlan
	ok, err := r.Var(varMigration, &p)
	switch {
	case err != nil:
		return p, nil, err
	case !ok && r.Flow.Flow == events.CmdResamaniaMigrate:
		var cmd events.ResamaniaMigrate
		if err := r.Command(&cmd); err != nil {
			return p, nil, err
		}
		p = migrationPlan{SourceContactID: cmd.SourceContactID, SourceEmail: cmd.SourceContactEmail,
			TargetContactID: cmd.TargetContactID, TargetClubID: cmd.TargetClubID, SaleID: cmd.SaleID}
	case !ok:
		return p, nil, errors.New("migration: the flow holds no migration plan")
	}
	api, err := h.clients(r.Flow.Tenant)
	if err != nil {
		return p, nil, fmt.Errorf("resamania client of tenant %s: %w", r.Flow.Tenant, err)
	}
	return p, api, nil
}

// temp creates the temporary contact of a register flow in its club, or
// finds the one an earlier attempt of this step created.
func (h *ResamaniaMigration) temp(ctx context.Context, r *Run) (Transition, error) {
	p, api, err := h.plan(r)
	if err != nil {
		return Transition{}, err
	}
	var cmd events.ResamaniaRegister
	if err := r.Command(&cmd); err != nil {
		return Transition{}, err
	}
	p.SourceEmail = cmd.Contact.Email
	// Look before acting: a redelivered step finds its temp contact.
	existing, err := api.FindContactsByEmail(ctx, p.target(), cmd.Contact.Email)
	if err != nil {
		return Transition{}, err
	}
	var temp resamania.Contact
	for _, c := range existing {
		if c.State == resamania.StateTemp && c.ClubID == p.TargetClubID {
			temp = c
		}
	}
	emitted := []events.Event(nil)
	if temp.ID == "" {
		in := newResamaniaContact(&cmd)
		in.State = resamania.StateTemp
		temp, err = api.CreateContact(ctx, p.target(), in)
		if err != nil {
			return Transition{}, err // a "required" refusal becomes required_fields (resamaniaFailure)
		}
		emitted = append(emitted, &events.ResamaniaContactCreated{Contact: contactEvent(temp)})
	}
	p.TargetContactID = temp.ID
	return Transition{Outcome: "temp_created", Events: emitted, Next: StepResamaniaMigrateContact,
		Vars: map[string]any{varMigration: p}}, nil
}

// migrate moves the prospect's data into the temporary contact.
func (h *ResamaniaMigration) migrate(ctx context.Context, r *Run) (Transition, error) {
	p, api, err := h.plan(r)
	if err != nil {
		return Transition{}, err
	}
	err = api.MigrateContactAs(ctx, p.SourceEmail, p.target(), p.SourceContactID, p.TargetContactID, p.TargetClubID)
	if err != nil {
		if tr, ok := transferRefusal(err, transferPlan{DestinationClubID: p.TargetClubID}); ok {
			return tr, nil
		}
		return Transition{}, err
	}
	migrated := &events.ResamaniaContactMigrated{SourceContactID: p.SourceContactID, TargetContactID: p.TargetContactID, TargetClubID: p.TargetClubID}
	if p.SaleID != "" {
		return Transition{Outcome: "migrated", Events: []events.Event{migrated}, Next: StepResamaniaSaleUpdate, Vars: map[string]any{varMigration: p}}, nil
	}
	return h.done(ctx, r, api, p, "migrated", migrated)
}

// sale refreshes the sale's contact after the migration.
func (h *ResamaniaMigration) sale(ctx context.Context, r *Run) (Transition, error) {
	p, api, err := h.plan(r)
	if err != nil {
		return Transition{}, err
	}
	if err := api.UpdateSaleContact(ctx, p.target(), p.SaleID); err != nil {
		return Transition{}, err
	}
	return h.done(ctx, r, api, p, "sale_updated", &events.ResamaniaSaleUpdated{SaleID: p.SaleID, ContactID: p.TargetContactID})
}

func (h *ResamaniaMigration) done(ctx context.Context, r *Run, api ResamaniaMigrationAPI, p migrationPlan, outcome string, ev events.Event) (Transition, error) {
	c, err := api.GetContact(ctx, p.target(), p.TargetContactID)
	if err != nil {
		return Transition{}, err
	}
	return Transition{Outcome: outcome, Events: []events.Event{ev},
		Terminal: &events.Completed{Result: events.ResamaniaResult{ContactID: p.TargetContactID, ContactNumber: c.Number,
			ClubID: p.TargetClubID, Migrated: true, SaleID: p.SaleID,
			// A register flow created the temporary contact; a migrate
			// command names an existing one.
			Created: r.Flow.Flow == events.CmdResamaniaRegister}}}, nil
}
