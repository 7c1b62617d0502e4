package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Resamania prospect-transfer step names (durable consumer names: never
// rename). StepResamaniaTransferCode is a waiting step: the OTP handler
// runs it with ResamaniaTransfer as its OTPVendor.
const (
	StepResamaniaTransferRequest = "resamania.transfer.request"
	StepResamaniaTransferCode    = "resamania.transfer.code"
)

// Flow variables of a transfer.
const (
	varTransfer         = "transfer"
	varSignatureRequest = "signatureRequest"
)

// transferPlan is what a transfer needs, from a register command whose
// person is a prospect elsewhere or from a transfer command.
type transferPlan struct {
	ContactID                string `json:"contactId"`
	SourceClubID             string `json:"sourceClubId"`
	DestinationClubID        string `json:"destinationClubId"`
	DestinationNetworkNodeID string `json:"destinationNetworkNodeId"`
	// Phone is where the vendor sends the code, as the vendor shows it
	// (masked), when known.
	Phone string `json:"phone,omitempty"`
}

func (p transferPlan) destination() resamania.Scope {
	return resamania.Scope{ClubID: p.DestinationClubID, NetworkNodeID: p.DestinationNetworkNodeID}
}

// ResamaniaTransferAPI is what the transfer needs from a vendor client.
type ResamaniaTransferAPI interface {
	RequestContactMigration(ctx context.Context, s resamania.Scope, contactID, destinationClubID string) (resamania.SignatureRequest, error)
	ValidateSignatureRequest(ctx context.Context, s resamania.Scope, requestID, code string) (resamania.SignatureRequest, error)
	CancelSignatureRequest(ctx context.Context, s resamania.Scope, requestID string) (resamania.SignatureRequest, error)
	GetContact(ctx context.Context, s resamania.Scope, contactID string) (resamania.Contact, error)
	FindContactsByEmail(ctx context.Context, s resamania.Scope, email string) ([]resamania.Contact, error)
}

// ResamaniaTransferClients returns the transfer client of a tenant.
type ResamaniaTransferClients func(tenant string) (ResamaniaTransferAPI, error)

// ResamaniaTransfer moves a prospect of another club of the network to the
// destination club (seed 002): the vendor texts a code to the person
// (step resamania.transfer.request), the flow waits, and the code the
// person gives validates the move (OTPVendor of resamania.transfer.code);
// the new contact is then fetched in the destination club.
type ResamaniaTransfer struct {
	clients ResamaniaTransferClients
	otp     OTPConfig
}

// NewResamaniaTransfer returns the transfer steps.
func NewResamaniaTransfer(clients ResamaniaTransferClients, otp OTPConfig) *ResamaniaTransfer {
	return &ResamaniaTransfer{clients: clients, otp: otp.WithDefaults()}
}

// RequestStep is the step that asks the vendor to text a code.
func (h *ResamaniaTransfer) RequestStep() Step {
	return Step{Name: StepResamaniaTransferRequest, Run: h.request}
}

func (h *ResamaniaTransfer) plan(r *Run) (transferPlan, ResamaniaTransferAPI, error) {
	var p transferPlan
	ok, err := r.Var(varTransfer, &p)
	switch {
	case err != nil:
		return p, nil, err
	case !ok && r.Flow.Flow == events.CmdResamaniaTransfer:
		var cmd events.ResamaniaTransfer
		if err := r.Command(&cmd); err != nil {
			return p, nil, err
		}
		p = transferPlan{ContactID: cmd.ContactID, SourceClubID: cmd.SourceClubID,
			DestinationClubID: cmd.DestinationClubID, DestinationNetworkNodeID: cmd.DestinationNetworkNodeID}
	case !ok:
		return p, nil, errors.New("transfer: the flow holds no transfer plan")
	}
	api, err := h.clients(r.Flow.Tenant)
	if err != nil {
		return p, nil, fmt.Errorf("resamania client of tenant %s: %w", r.Flow.Tenant, err)
	}
	return p, api, nil
}

func (h *ResamaniaTransfer) request(ctx context.Context, r *Run) (Transition, error) {
	p, api, err := h.plan(r)
	if err != nil {
		return Transition{}, err
	}
	if p.Phone == "" && r.Flow.Flow == events.CmdResamaniaTransfer {
		// Where the code goes, for otp.requested; best effort: data
		// sharing may hide the contact from the destination club.
		if c, err := api.GetContact(ctx, resamania.Scope{ClubID: p.SourceClubID}, p.ContactID); err == nil {
			p.Phone = c.Mobile
		}
	}
	sr, err := api.RequestContactMigration(ctx, p.destination(), p.ContactID, p.DestinationClubID)
	if err != nil {
		if tr, ok := transferRefusal(err, p); ok {
			return tr, nil
		}
		return Transition{}, err
	}
	return Transition{
		Outcome: "code_sent",
		Next:    StepResamaniaTransferCode,
		Wait:    h.otp.Wait(r.Now, events.ChannelSMS, maskedPhone(p.Phone)),
		Vars:    map[string]any{varTransfer: p, varSignatureRequest: sr.ID},
	}, nil
}

// Verify implements OTPVendor: it validates the signature request with the
// code and fetches the contact the vendor created in the destination club.
func (h *ResamaniaTransfer) Verify(ctx context.Context, r *Run, code string) (Transition, error) {
	p, api, err := h.plan(r)
	if err != nil {
		return Transition{}, err
	}
	var reqID string
	if _, err := r.Var(varSignatureRequest, &reqID); err != nil {
		return Transition{}, err
	}
	sr, err := api.ValidateSignatureRequest(ctx, p.destination(), reqID, code)
	var c resamania.Contact
	switch {
	case resamania.IsInvalidCode(err):
		return Transition{}, fmt.Errorf("resamania: %w", ErrWrongCode)
	case resamania.IsSignatureNotPending(err):
		// Validated already — by this very code, when the reply or the
		// commit after it was lost — or cancelled. Look before failing.
		found, ok, lerr := h.transferred(ctx, r, api, p)
		if lerr != nil {
			return Transition{}, lerr
		}
		if !ok {
			return Transition{}, err
		}
		c, sr.ResultTargetID = found, found.ID
	case err != nil:
		return Transition{}, err
	default:
		if c, err = api.GetContact(ctx, p.destination(), sr.ResultTargetID); err != nil {
			return Transition{}, err
		}
	}
	clubID := c.ClubID
	if clubID == "" {
		clubID = p.DestinationClubID
	}
	return Transition{
		Outcome: "transferred",
		Events: []events.Event{&events.ResamaniaProspectTransferred{ContactID: p.ContactID, NewContactID: sr.ResultTargetID,
			SourceClubID: p.SourceClubID, DestinationClubID: p.DestinationClubID}},
		Terminal: &events.Completed{Result: events.ResamaniaResult{ContactID: sr.ResultTargetID, ContactNumber: c.Number,
			ClubID: clubID, Transferred: true}},
	}, nil
}

// transferred finds the person in the destination club after a transfer
// whose outcome was lost: by the register command's e-mail, or the source
// contact's.
func (h *ResamaniaTransfer) transferred(ctx context.Context, r *Run, api ResamaniaTransferAPI, p transferPlan) (resamania.Contact, bool, error) {
	email := ""
	if r.Flow.Flow == events.CmdResamaniaRegister {
		var cmd events.ResamaniaRegister
		if err := r.Command(&cmd); err != nil {
			return resamania.Contact{}, false, err
		}
		email = cmd.Contact.Email
	} else {
		src, err := api.GetContact(ctx, resamania.Scope{ClubID: p.SourceClubID}, p.ContactID)
		if err != nil {
			return resamania.Contact{}, false, err
		}
		email = src.Email
	}
	found, err := api.FindContactsByEmail(ctx, p.destination(), email)
	if err != nil {
		return resamania.Contact{}, false, err
	}
	for _, c := range found {
		if c.ClubID == p.DestinationClubID && c.ID != p.ContactID {
			return c, true, nil
		}
	}
	return resamania.Contact{}, false, nil
}

// Resend implements OTPVendor: the pending request is cancelled and a new
// one sends a new code.
func (h *ResamaniaTransfer) Resend(ctx context.Context, r *Run) (Transition, error) {
	if err := h.Cancel(ctx, r); err != nil {
		return Transition{}, err
	}
	tr, err := h.request(ctx, r)
	if err != nil {
		return Transition{}, err
	}
	tr.Outcome = "code_resent"
	return tr, nil
}

// Cancel implements OTPVendor with the signature request's cancel
// transition; a request that is no longer pending is left as it is.
func (h *ResamaniaTransfer) Cancel(ctx context.Context, r *Run) error {
	p, api, err := h.plan(r)
	if err != nil {
		return err
	}
	var reqID string
	if ok, err := r.Var(varSignatureRequest, &reqID); err != nil || !ok {
		return err
	}
	_, err = api.CancelSignatureRequest(ctx, p.destination(), reqID)
	var ve *vendors.Error
	if errors.As(err, &ve) && ve.Code == resamania.CodeSignatureNotPending {
		return nil
	}
	return err
}

// transferRefusal maps the vendor's documented refusals of a transfer to
// failed events.
func transferRefusal(err error, p transferPlan) (Transition, bool) {
	var ve *vendors.Error
	if !errors.As(err, &ve) || ve.Kind != vendors.Permanent {
		return Transition{}, false
	}
	switch ve.Code {
	case resamania.CodeClubNotValid:
		info := vendorErrorInfo(events.CodeContactNotTransferable, err)
		info.Message = "the contact is already in the destination club " + p.DestinationClubID
		return Transition{Outcome: "not_transferable", Terminal: &events.Failed{Error: info}}, true
	case resamania.CodeContactNotValid:
		info := vendorErrorInfo(events.CodeContactNotTransferable, err)
		info.Message = "the contact is neither a prospect nor a former client: it cannot move to another club"
		return Transition{Outcome: "not_transferable", Terminal: &events.Failed{Error: info}}, true
	case resamania.CodeResourceNotAccessible, resamania.CodeUnauthorizedEndpoint:
		info := vendorErrorInfo(events.CodeAccessDenied, err)
		info.Message = "the Resamania account may not reach this contact from the destination club (network data sharing or scope)"
		return Transition{Outcome: "access_denied", Terminal: &events.Failed{Error: info}}, true
	}
	return Transition{}, false
}

// maskedPhone shows a phone number masked, keeping a number the vendor
// already masked ("******1615") as it is.
func maskedPhone(phone string) string {
	if phone == "" || strings.Contains(phone, "*") {
		return phone
	}
	return events.MaskDestination(phone)
}
