package handlers

import (
	"context"
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
	return Transition{Outcome: "not_found", Next: StepResamaniaCreate}, nil
}
