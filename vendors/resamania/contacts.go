package resamania

import (
	"context"
	"net/http"
	"net/url"
)

// FindContactsByEmail returns the contacts of the scope's club whose email
// is exactly email (Resamania keeps emails unique per clientToken, so at
// most one is expected). No match is an empty slice, not an error. The
// email is URL-encoded here: pass it as typed ("john+test@email.tld").
//
// GET /{clientToken}/contacts?email=
func (c *Client) FindContactsByEmail(ctx context.Context, s Scope, email string) ([]Contact, error) {
	if email == "" {
		return nil, invalidArgument(OpFindContactsByEmail, "email is required")
	}
	var out collection[Contact]
	if err := c.do(ctx, OpFindContactsByEmail, http.MethodGet, "/contacts", url.Values{"email": {email}}, s, nil, &out); err != nil {
		return nil, err
	}
	return out.Members, nil
}

// SearchNetworkContacts looks for email across every club of the scope's
// network and returns the limited view (no email, masked phone), with each
// contact's ClubID: where a migration or transfer would start. A contact
// token cannot call it (403 CodeUnauthorizedEndpoint).
//
// GET /{clientToken}/network/contact_search?email=
func (c *Client) SearchNetworkContacts(ctx context.Context, s Scope, email string) ([]NetworkContact, error) {
	if email == "" {
		return nil, invalidArgument(OpSearchNetwork, "email is required")
	}
	var out collection[NetworkContact]
	if err := c.do(ctx, OpSearchNetwork, http.MethodGet, "/network/contact_search", url.Values{"email": {email}}, s, nil, &out); err != nil {
		return nil, err
	}
	return out.Members, nil
}

// CreateContact creates a contact in the scope's club (or in.ClubID) and
// returns it; its ID is the IRI for later calls. Expect a Permanent
// *vendors.Error with CodeEmailAlreadyUsed (IsEmailAlreadyUsed) when the
// email is used anywhere under the clientToken, and CodeValidation with
// Fields for missing or malformed fields.
//
// POST /{clientToken}/contacts → 201
func (c *Client) CreateContact(ctx context.Context, s Scope, in NewContact) (Contact, error) {
	var out Contact
	if err := c.do(ctx, OpCreateContact, http.MethodPost, "/contacts", nil, s, in, &out); err != nil {
		return Contact{}, err
	}
	if out.ID == "" {
		return Contact{}, invalidAnswer(OpCreateContact, http.StatusCreated, "the created contact has no @id", nil)
	}
	return out, nil
}
