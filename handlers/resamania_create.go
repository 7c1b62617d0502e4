package handlers

import (
	"context"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// ResamaniaCreate is the step that creates the contact in the club. When the
// vendor answers that the e-mail is already used (another registration won
// the race, or an earlier attempt of this step succeeded before a crash) it
// looks the contact up again instead of failing.
type ResamaniaCreate struct {
	clients ResamaniaClients
}

// NewResamaniaCreate returns the creation step.
func NewResamaniaCreate(clients ResamaniaClients) *ResamaniaCreate {
	return &ResamaniaCreate{clients: clients}
}

// Step returns the step definition.
func (h *ResamaniaCreate) Step() Step { return Step{Name: StepResamaniaCreate, Run: h.run} }

func (h *ResamaniaCreate) run(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, err := registerCommand(r, h.clients)
	if err != nil {
		return Transition{}, err
	}
	scope := resamaniaScope(cmd)
	created, err := api.CreateContact(ctx, scope, newResamaniaContact(cmd))
	switch {
	case err == nil:
		return Transition{
			Outcome: "created",
			Events:  []events.Event{&events.ResamaniaContactCreated{Contact: contactEvent(created)}},
			Terminal: &events.Completed{Result: events.ResamaniaResult{
				ContactID: created.ID, ContactNumber: created.Number, ClubID: created.ClubID, Created: true}},
		}, nil
	case resamania.IsEmailAlreadyUsed(err):
		contacts, lerr := api.FindContactsByEmail(ctx, scope, cmd.Contact.Email)
		if lerr != nil {
			return Transition{}, lerr
		}
		if len(contacts) > 0 {
			return resamaniaFound(contacts[0], "found_after_conflict"), nil
		}
		// The e-mail belongs to a contact of another club of this account.
		info := vendorErrorInfo(events.CodeEmailTaken, err)
		info.Message = "the e-mail address is used by a contact of another club of this Resamania account"
		return Transition{Outcome: "email_taken", Terminal: &events.Failed{Error: info}}, nil
	default:
		// A "required" refusal becomes required_fields (resamaniaFailure).
		return Transition{}, err
	}
}

// newResamaniaContact maps the command's contact to the vendor's creation
// request.
func newResamaniaContact(cmd *events.ResamaniaRegister) resamania.NewContact {
	c := cmd.Contact
	in := resamania.NewContact{
		Email:      c.Email,
		GivenName:  c.GivenName,
		FamilyName: c.FamilyName,
		BirthDate:  c.BirthDate,
		Gender:     c.Gender,
		Mobile:     c.Mobile,
		ClubID:     cmd.ClubID,
		SourceID:   c.SourceID,
	}
	if a := c.Address; a != nil {
		in.Address = &resamania.Address{
			StreetAddress:   a.StreetAddress,
			PostalCode:      a.PostalCode,
			AddressLocality: a.AddressLocality,
			AddressCountry:  a.AddressCountry,
		}
	}
	return in
}
