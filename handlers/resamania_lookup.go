package handlers

import (
	"context"
	"fmt"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// ResamaniaLookup is the step that looks the person up by e-mail in the
// club: found, the flow completes with the existing contact; not found, the
// flow goes on to contact creation.
type ResamaniaLookup struct {
	clients ResamaniaClients
}

// NewResamaniaLookup returns the lookup step.
func NewResamaniaLookup(clients ResamaniaClients) *ResamaniaLookup {
	return &ResamaniaLookup{clients: clients}
}

// Step returns the step definition.
func (h *ResamaniaLookup) Step() Step { return Step{Name: StepResamaniaLookup, Run: h.run} }

func (h *ResamaniaLookup) run(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, err := registerCommand(r, h.clients)
	if err != nil {
		return Transition{}, err
	}
	contacts, err := api.FindContactsByEmail(ctx, resamaniaScope(cmd), cmd.Contact.Email)
	if err != nil {
		return Transition{}, err
	}
	if len(contacts) > 0 {
		return resamaniaFound(contacts[0], "found"), nil
	}
	// Not in the club: a club chain may know the person in another club.
	others, err := api.SearchNetworkContacts(ctx, resamaniaScope(cmd), cmd.Contact.Email)
	if err != nil {
		return Transition{}, err
	}
	for _, c := range others {
		if c.ClubID != "" && c.ClubID != cmd.ClubID {
			return elsewhere(cmd, c), nil
		}
	}
	return Transition{Outcome: "not_found", Next: StepResamaniaCreate}, nil
}

// elsewhere decides what to do with a person known in another club of the
// network, by the command's onProspectElsewhere.
func elsewhere(cmd *events.ResamaniaRegister, c resamania.NetworkContact) Transition {
	if c.State != resamania.StateProspect && c.State != resamania.StateOldClient {
		return Transition{Outcome: "not_transferable", Terminal: &events.Failed{Error: events.ErrorInfo{
			Code: events.CodeContactNotTransferable, Vendor: resamania.Vendor,
			Message: fmt.Sprintf("the person is a %s of club %s (contact %s): only a prospect or a former client can move to another club", c.State, c.ClubID, c.ID),
		}}}
	}
	switch cmd.OnProspectElsewhere {
	case events.ProspectReject:
		return Transition{Outcome: "prospect_elsewhere", Terminal: &events.Failed{Error: events.ErrorInfo{
			Code: events.CodeProspectElsewhere, Vendor: resamania.Vendor,
			Message: fmt.Sprintf("the person is a %s of club %s (contact %s)", c.State, c.ClubID, c.ID),
		}}}
	case events.ProspectMigrate:
		return Transition{Outcome: "prospect_elsewhere", Next: StepResamaniaMigrateTemp,
			Vars: map[string]any{varMigration: migrationPlan{SourceContactID: c.ID, SourceClubID: c.ClubID, TargetClubID: cmd.ClubID,
				TargetNetworkNodeID: cmd.NetworkNodeID, SaleID: cmd.SaleID}}}
	default: // transfer
		return Transition{Outcome: "prospect_elsewhere", Next: StepResamaniaTransferRequest,
			Vars: map[string]any{varTransfer: transferPlan{ContactID: c.ID, SourceClubID: c.ClubID, DestinationClubID: cmd.ClubID,
				DestinationNetworkNodeID: cmd.NetworkNodeID, Phone: c.PartialPhoneNumber}}}
	}
}
