package resamania

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/registrar-dev/registrar/vendors"
)

// Operation names of the transfer and migration calls.
const (
	OpRequestMigration    = "contact_migration_requests.create"
	OpSignatureTransition = "signature_requests.transition"
	OpGetContact          = "contacts.get"
	OpMigrateContact      = "contacts.migrate"
	OpUpdateSaleContact   = "sales.update_contact"
)

// States of a SignatureRequest.
const (
	SignatureCreated   = "created"   // pending: the SMS code was sent
	SignatureValidated = "validated" // the code was right: the contact was transferred
	SignatureCancelled = "cancelled" // cancelled: nothing was transferred
)

// SignatureRequest is a prospect transfer ("contact migration request");
// validating it with the SMS code moves the contact.
type SignatureRequest struct {
	ID             string   `json:"@id"`            // "/{ct}/signature_requests/{n}"
	State          string   `json:"state"`          // SignatureCreated, SignatureValidated, SignatureCancelled
	TargetIDs      []string `json:"targetIds"`      // club IRIs
	ResultTargetID string   `json:"resultTargetId"` // after validate: the new contact's IRI in the destination club
}

// RequestContactMigration starts the transfer of contact contactID (an
// IRI; a prospect or old_client of another club) to the club
// destinationClubID (an IRI): Resamania sends the contact an SMS with a
// code, to be given to ValidateSignatureRequest. s is the DESTINATION
// club's scope, as the vendor requires (a scope naming another club is
// refused here; a network node above the clubs is allowed).
//
// Expect a Permanent *vendors.Error with CodeClubNotValid (the contact is
// already in that club), CodeContactNotValid (a client or temp contact),
// CodeResourceNotAccessible (the scope's club may not see the contact: use
// a network node above it) or CodeNotFound. Each successful call sends
// another SMS: retrying after a lost reply leaves an extra pending request.
//
// POST /{clientToken}/contact_migration_requests → 201
func (c *Client) RequestContactMigration(ctx context.Context, s Scope, contactID, destinationClubID string) (SignatureRequest, error) {
	const op = OpRequestMigration
	ct := c.ClientToken()
	if _, ok := IDFromIRI(ct, "contacts", contactID); !ok {
		return SignatureRequest{}, invalidArgument(op, "contactID must be a contact IRI (/"+ct+"/contacts/{id})")
	}
	if _, ok := IDFromIRI(ct, "clubs", destinationClubID); !ok {
		return SignatureRequest{}, invalidArgument(op, "destinationClubID must be a club IRI (/"+ct+"/clubs/{id})")
	}
	if s.ClubID != "" && s.ClubID != destinationClubID {
		return SignatureRequest{}, invalidArgument(op, "the scope must be the destination club's")
	}
	in := struct {
		ContactID      string `json:"contactId"`
		ClubID         string `json:"clubId"`
		DisableNetwork bool   `json:"disableNetwork"`
	}{contactID, destinationClubID, true}
	var out SignatureRequest
	if err := c.do(ctx, op, http.MethodPost, "/contact_migration_requests", nil, s, in, &out); err != nil {
		return SignatureRequest{}, err
	}
	if out.ID == "" {
		return SignatureRequest{}, invalidAnswer(op, http.StatusCreated, "the signature request has no @id", nil)
	}
	return out, nil
}

// ValidateSignatureRequest completes the transfer requestID (the
// signature request's IRI) with the code the contact received by SMS; on
// success the request is SignatureValidated and ResultTargetID names the
// contact created in the destination club. s is the destination club's
// scope.
//
// A wrong code gives a Permanent error with CodeInvalidCode (IsInvalidCode):
// the request stays pending and may be validated again — the vendor does
// not count attempts, the caller must. A request already validated or
// cancelled gives CodeSignatureNotPending (also what a retry after a lost
// reply gets). The code never appears in an error this method returns.
//
// POST /{clientToken}/signature_requests/{id}/transitions → 201
func (c *Client) ValidateSignatureRequest(ctx context.Context, s Scope, requestID, code string) (SignatureRequest, error) {
	sr, err := c.transition(ctx, s, requestID, "validate", code)
	return sr, redactSecret(err, code)
}

// CancelSignatureRequest cancels the pending transfer requestID (the
// signature request's IRI). s is the destination club's scope. A request
// already validated or cancelled gives CodeSignatureNotPending.
//
// POST /{clientToken}/signature_requests/{id}/transitions → 201
func (c *Client) CancelSignatureRequest(ctx context.Context, s Scope, requestID string) (SignatureRequest, error) {
	return c.transition(ctx, s, requestID, "cancel", "")
}

func (c *Client) transition(ctx context.Context, s Scope, requestID, transition, code string) (SignatureRequest, error) {
	const op = OpSignatureTransition
	ct := c.ClientToken()
	id, ok := IDFromIRI(ct, "signature_requests", requestID)
	if !ok {
		return SignatureRequest{}, invalidArgument(op, "requestID must be a signature request IRI (/"+ct+"/signature_requests/{id})")
	}
	in := struct {
		Transition     string `json:"transition"`
		Code           string `json:"code,omitempty"`
		DisableNetwork bool   `json:"disableNetwork"`
	}{transition, code, true}
	var out SignatureRequest
	if err := c.do(ctx, op, http.MethodPost, "/signature_requests/"+strconv.Itoa(id)+"/transitions", nil, s, in, &out); err != nil {
		return SignatureRequest{}, err
	}
	return out, nil
}

// GetContact returns the contact contactID (an IRI) as seen from s: after
// a transfer, the new contact from the destination club's scope. A club
// whose network's data-sharing rules hide the contact gets
// CodeResourceNotAccessible; a contact token may read only its own
// contact (403 CodeUnauthorizedEndpoint).
//
// GET /{clientToken}/contacts/{id}
func (c *Client) GetContact(ctx context.Context, s Scope, contactID string) (Contact, error) {
	const op = OpGetContact
	ct := c.ClientToken()
	id, ok := IDFromIRI(ct, "contacts", contactID)
	if !ok {
		return Contact{}, invalidArgument(op, "contactID must be a contact IRI (/"+ct+"/contacts/{id})")
	}
	var out Contact
	if err := c.do(ctx, op, http.MethodGet, "/contacts/"+strconv.Itoa(id), nil, s, nil, &out); err != nil {
		return Contact{}, err
	}
	if out.ID == "" {
		return Contact{}, invalidAnswer(op, http.StatusOK, "the contact has no @id", nil)
	}
	return out, nil
}

// MigrateContact copies the data of the prospect sourceContactID onto the
// temporary contact targetContactID of club targetClubID (all IRIs), for a
// person already known in another club (see the online-registration
// scenario); then UpdateSaleContact refreshes the sale. The source must be
// a prospect, the target temp, and their clubs must differ.
//
// It must be called on a client acting as the SOURCE contact:
// c.As(ContactCredentials(sourceEmail)); any other grant gets a Permanent
// 403 CodeUnauthorizedEndpoint. Other refusals: CodeContactNotValid,
// CodeClubNotValid, CodeNotFound.
//
// PUT /{clientToken}/contacts/{id}/migrate → 204
func (c *Client) MigrateContact(ctx context.Context, s Scope, sourceContactID, targetContactID, targetClubID string) error {
	const op = OpMigrateContact
	ct := c.ClientToken()
	id, ok := IDFromIRI(ct, "contacts", sourceContactID)
	if !ok {
		return invalidArgument(op, "sourceContactID must be a contact IRI (/"+ct+"/contacts/{id})")
	}
	if _, ok := IDFromIRI(ct, "contacts", targetContactID); !ok {
		return invalidArgument(op, "targetContactID must be a contact IRI (/"+ct+"/contacts/{id})")
	}
	if _, ok := IDFromIRI(ct, "clubs", targetClubID); !ok {
		return invalidArgument(op, "targetClubID must be a club IRI (/"+ct+"/clubs/{id})")
	}
	in := struct {
		TargetContactID string `json:"targetContactId"`
		TargetClubID    string `json:"targetClubId"`
	}{targetContactID, targetClubID}
	return c.do(ctx, op, http.MethodPut, "/contacts/"+strconv.Itoa(id)+"/migrate", nil, s, in, nil)
}

// UpdateSaleContact refreshes the contact data a sale holds (contactId,
// contactNumber, contactFamilyName, contactGivenName) from its contact,
// after MigrateContact. saleID is the sale's plain id ("33"), not an IRI.
// An unknown sale gives a Permanent 404 CodeNotFound.
//
// PUT /{clientToken}/sale/{saleId}/update_contact → 204
func (c *Client) UpdateSaleContact(ctx context.Context, s Scope, saleID string) error {
	const op = OpUpdateSaleContact
	if n, err := strconv.Atoi(saleID); err != nil || n <= 0 || strings.TrimLeft(saleID, "0123456789") != "" {
		return invalidArgument(op, "saleID must be a sale's plain numeric id, e.g. \"33\"")
	}
	return c.do(ctx, op, http.MethodPut, "/sale/"+saleID+"/update_contact", nil, s, nil, nil)
}

// redactSecret removes secret from what err says: a vendor reply quoting
// the SMS code must not carry it into errors, logs or dead letters. The
// vendor's message keys (Code) are kept, so classification still works.
func redactSecret(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	hide := func(s string) string { return strings.ReplaceAll(s, secret, "[redacted]") }
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		if strings.Contains(err.Error(), secret) {
			return errors.New(hide(err.Error()))
		}
		return err
	}
	if !messageKey.MatchString(ve.Code) {
		ve.Code = hide(ve.Code)
	}
	ve.Message = hide(ve.Message)
	if len(ve.Fields) > 0 {
		fields := make([]vendors.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = vendors.FieldError{Field: hide(f.Field), Message: hide(f.Message)}
		}
		ve.Fields = fields
	}
	if ve.Err != nil && strings.Contains(ve.Err.Error(), secret) {
		ve.Err = errors.New(hide(ve.Err.Error()))
	}
	if strings.Contains(err.Error(), secret) { // ve was wrapped in text quoting it
		return ve
	}
	return err
}
