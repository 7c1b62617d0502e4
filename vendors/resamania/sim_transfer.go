package resamania

import (
	"crypto/subtle"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// The simulator's prospect transfer (contact migration requests and their
// SMS-code signature), contact migration and sale update. Where the
// vendor's documents are silent the rules are marked [inferred].

const (
	firstSignatureRequestID = 455000
	firstSaleID             = 1
	maxSMS                  = 10000 // SMS kept in the outbox
	smsCodeDigits           = 6     // the vendor sends 4 to 6
	signatureRequestContext = "/contexts/SignatureRequest"
	signatureRequestType    = "SignatureRequest"
)

// SMS is a text message the simulator "sent": the code of a signature
// request, as the person's phone would show it. It is the simulator's
// data: tests and the demo read codes from it (Simulator.SMS, LastCode,
// GET /_sim/sms).
type SMS struct {
	Time               time.Time `json:"time"`
	ClientToken        string    `json:"clientToken"`
	To                 string    `json:"to"`                 // the contact's mobile
	Code               string    `json:"code"`               // smsCodeDigits digits
	SignatureRequestID string    `json:"signatureRequestId"` // the request's IRI
}

// SimSale is a sale (a cart) seeded in an account.
type SimSale struct {
	// ID is the sale's id ("/sale/{id}/update_contact"); 0 or a used id
	// takes the next free one.
	ID int `json:"id" yaml:"id"`
	// ContactID is the IRI of the sale's contact.
	ContactID string `json:"contactId" yaml:"contactId"`
}

// SimSaleState is a sale as the simulator holds it: the contact data it
// copied from its contact when it was created or last updated by
// PUT /sale/{id}/update_contact.
type SimSaleState struct {
	ID                int    `json:"id"`
	ContactID         string `json:"contactId"`
	ContactNumber     string `json:"contactNumber"`
	ContactFamilyName string `json:"contactFamilyName"`
	ContactGivenName  string `json:"contactGivenName"`
}

// simSignature is a contact migration request: its SMS-code signature.
type simSignature struct {
	id      int
	contact int    // the contact to transfer
	club    int    // the destination club
	state   string // SignatureCreated, SignatureValidated, SignatureCancelled
	code    string
	result  int // the contact created by validate
}

// simError is a refusal decided under Simulator.mu and written after it.
type simError struct {
	status     int
	desc       string
	violations []vendors.FieldError
}

func (e *simError) write(w http.ResponseWriter) {
	if len(e.violations) > 0 {
		writeViolations(w, e.violations)
		return
	}
	hydraError(w, e.status, e.desc)
}

func badRequest(desc string) *simError { return &simError{status: http.StatusBadRequest, desc: desc} }

func notFoundItem(iri string) *simError {
	return &simError{status: http.StatusNotFound, desc: `Item not found for "` + iri + `".`}
}

// required returns the "required" violations of the named fields left
// empty, in order.
func required(kv ...string) []vendors.FieldError {
	var vs []vendors.FieldError
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			vs = append(vs, vendors.FieldError{Field: kv[i], Message: requiredMessage})
		}
	}
	return vs
}

// plainID reads a path's {id}: digits only, positive.
func plainID(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// createMigrationRequest serves POST /contact_migration_requests
// {contactId, clubId, disableNetwork}, made with the DESTINATION club's
// headers: 201 with a pending SignatureRequest, and an SMS with a code to
// the contact's mobile. In order:
//
//   - a contact token: 403 [inferred];
//   - no scope headers: 404; contactId or clubId missing: 400 "required";
//     not an IRI of the account (a bare id, an unknown contact or club):
//     404;
//   - the header club may not see the contact (data sharing, as for
//     GET /contacts/{id}): 400 `La ressource "…" n'existe pas.`;
//   - clubId is the contact's club: 400 CodeClubNotValid;
//   - the contact is neither prospect nor old_client (client, temp), or
//     was already transferred: 400 CodeContactNotValid;
//   - the contact has no mobile: 400 "required" on mobile [inferred].
//
// A contact may have several pending requests, each with its own code
// [inferred]; the first validated archives the contact, and validating
// another then gives CodeContactNotValid.
func (s *Simulator) createMigrationRequest(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	if t.grant == GrantContactCredentials {
		unauthorizedEndpoint(w)
		return
	}
	if !jsonContentType(w, r) {
		return
	}
	sc, ok := s.scope(w, r, a, t)
	if !ok {
		return
	}
	if !sc.set {
		hydraError(w, http.StatusNotFound, "Item not found.")
		return
	}
	var in struct {
		ContactID      string `json:"contactId"`
		ClubID         string `json:"clubId"`
		DisableNetwork bool   `json:"disableNetwork"`
	}
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	if vs := required("contactId", in.ContactID, "clubId", in.ClubID); len(vs) > 0 {
		writeViolations(w, vs)
		return
	}
	contactID, ok := IDFromIRI(a.ClientToken, "contacts", in.ContactID)
	if !ok {
		itemNotFound(w, in.ContactID)
		return
	}
	dest, ok := a.club(in.ClubID)
	if !ok {
		itemNotFound(w, in.ClubID)
		return
	}

	s.mu.Lock()
	sig, fail := s.newSignature(a, sc, contactID, dest.ID)
	var reply signatureJSON
	if fail == nil {
		reply = a.signatureReply(sig)
	}
	s.mu.Unlock()
	if fail != nil {
		fail.write(w)
		return
	}
	w.Header().Set("Location", reply.ID)
	writeJSON(w, http.StatusCreated, "application/ld+json; charset=utf-8", reply)
}

// newSignature checks and records a transfer of contact id to club dest
// and sends its SMS (caller holds s.mu).
func (s *Simulator) newSignature(a *account, sc callScope, id, dest int) (*simSignature, *simError) {
	c := a.byID[id]
	iri := ContactIRI(a.ClientToken, id)
	switch {
	case c == nil:
		return nil, notFoundItem(iri)
	case sc.club != 0 && c.clubID != sc.club && a.clubs[sc.club].NoSharing:
		return nil, badRequest(`La ressource "` + iri + `" n'existe pas.`)
	}
	if fail := transferRefusal(c, dest); fail != nil {
		return nil, fail
	}
	if c.c.Mobile == "" {
		return nil, &simError{status: http.StatusBadRequest, violations: required("mobile", "")}
	}
	sig := &simSignature{id: a.nextSigID, contact: id, club: dest, state: SignatureCreated, code: smsCode()}
	a.nextSigID++
	a.signatures[sig.id] = sig
	s.sendSMS(SMS{Time: s.now(), ClientToken: a.ClientToken, To: c.c.Mobile, Code: sig.code,
		SignatureRequestID: a.signatureIRI(sig.id)})
	return sig, nil
}

// transferRefusal says why c may not be transferred to club dest, nil if
// it may.
func transferRefusal(c *simContact, dest int) *simError {
	switch {
	case c.clubID == dest:
		return badRequest(CodeClubNotValid)
	case c.archived(), c.c.State != StateProspect && c.c.State != StateOldClient:
		return badRequest(CodeContactNotValid)
	}
	return nil
}

func smsCode() string {
	n := 1
	for range smsCodeDigits {
		n *= 10
	}
	return fmt.Sprintf("%0*d", smsCodeDigits, rand.IntN(n))
}

// sendSMS puts m in the outbox (caller holds s.mu).
func (s *Simulator) sendSMS(m SMS) {
	s.sms = append(s.sms, m)
	if over := len(s.sms) - maxSMS; over > 0 {
		s.sms = append(s.sms[:0], s.sms[over:]...)
	}
}

func (a *account) signatureIRI(id int) string {
	return "/" + a.ClientToken + "/signature_requests/" + strconv.Itoa(id)
}

type signatureJSON struct {
	Context        string   `json:"@context"`
	ID             string   `json:"@id"`
	Type           string   `json:"@type"`
	State          string   `json:"state"`
	TargetIDs      []string `json:"targetIds"`
	ResultTargetID *string  `json:"resultTargetId"`
}

// signatureReply is sig as the API shows it (caller holds s.mu). The code
// is never part of it.
func (a *account) signatureReply(sig *simSignature) signatureJSON {
	out := signatureJSON{
		Context: "/" + a.ClientToken + signatureRequestContext, ID: a.signatureIRI(sig.id), Type: signatureRequestType,
		State: sig.state, TargetIDs: []string{ClubIRI(a.ClientToken, sig.club)},
	}
	if sig.result != 0 {
		out.ResultTargetID = null(ContactIRI(a.ClientToken, sig.result))
	}
	return out
}

// transitionSignatureRequest serves POST /signature_requests/{id}/transitions
// {transition, code, disableNetwork}: 201 with the SignatureRequest.
//
//   - a contact token: 403 [inferred]; an id that is not a positive
//     number: 404; an unknown request: 404;
//   - transition other than "validate" or "cancel": 400 violation;
//   - a request already validated or cancelled: 400
//     CodeSignatureNotPending;
//   - "cancel": the request is cancelled, nothing else changes;
//   - "validate" with a code other than the SMS's: 400 CodeInvalidCode, the
//     request stays pending (attempts are not counted: the caller's
//     business);
//   - "validate" with the right code: the contact is checked again
//     (CodeClubNotValid, CodeContactNotValid; the request stays pending),
//     then a NEW contact is created in the destination club — a copy of
//     the source's data with a new @id and number, state prospect — and
//     the source contact is archived [inferred]: it keeps its @id, club
//     and state and is still served by GET /contacts/{id}, but no longer
//     found by e-mail or network search, no longer counted for e-mail
//     uniqueness, and refused (CodeContactNotValid) for another transfer
//     or migration. The reply has resultTargetId, the new contact's IRI.
func (s *Simulator) transitionSignatureRequest(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	if t.grant == GrantContactCredentials {
		unauthorizedEndpoint(w)
		return
	}
	if !jsonContentType(w, r) {
		return
	}
	if _, ok := s.scope(w, r, a, t); !ok {
		return
	}
	id, ok := plainID(stateOf(r).pathID)
	if !ok {
		hydraError(w, http.StatusNotFound, "Not Found")
		return
	}
	var in struct {
		Transition     string `json:"transition"`
		Code           string `json:"code"`
		DisableNetwork bool   `json:"disableNetwork"`
	}
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}

	s.mu.Lock()
	fail := a.transition(id, in.Transition, in.Code)
	var reply signatureJSON
	if fail == nil {
		reply = a.signatureReply(a.signatures[id])
	}
	s.mu.Unlock()
	if fail != nil {
		fail.write(w)
		return
	}
	writeJSON(w, http.StatusCreated, "application/ld+json; charset=utf-8", reply)
}

// transition applies transition to signature request id (caller holds
// Simulator.mu).
func (a *account) transition(id int, transition, code string) *simError {
	sig := a.signatures[id]
	if sig == nil {
		return notFoundItem(a.signatureIRI(id))
	}
	switch transition {
	case "":
		return &simError{violations: required("transition", "")}
	case "validate", "cancel":
	default:
		return &simError{violations: []vendors.FieldError{{Field: "transition", Message: "The value you selected is not a valid choice."}}}
	}
	if sig.state != SignatureCreated {
		return badRequest(CodeSignatureNotPending)
	}
	if transition == "cancel" {
		sig.state = SignatureCancelled
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(code), []byte(sig.code)) != 1 {
		return badRequest(CodeInvalidCode)
	}
	src := a.byID[sig.contact]
	if src == nil { // contacts are never deleted
		return notFoundItem(ContactIRI(a.ClientToken, sig.contact))
	}
	if fail := transferRefusal(src, sig.club); fail != nil {
		return fail
	}
	moved := src.c
	moved.ID, moved.Number, moved.State, moved.ClubID = "", "", StateProspect, ClubIRI(a.ClientToken, sig.club)
	if moved.Address != nil {
		addr := *moved.Address
		addr.ID = ""
		moved.Address = &addr
	}
	created := a.add(moved)
	src.movedTo = created.id
	sig.state, sig.result = SignatureValidated, created.id
	return nil
}

// migrateContact serves PUT /contacts/{id}/migrate {targetContactId,
// targetClubId}: 204 with no body.
//
//   - the caller must be authenticated as the source contact {id} (a
//     contact grant for its e-mail); any other token: 403
//     CodeUnauthorizedEndpoint;
//   - targetContactId or targetClubId missing: 400 "required"; not IRIs of
//     the account: 404;
//   - the source is not a prospect (or was transferred away), or the
//     target is not temp: 400 CodeContactNotValid;
//   - the target contact is not in targetClubId [inferred], or is in the
//     source's club: 400 CodeClubNotValid.
//
// The target keeps its @id, number, e-mail, club and state (temp), and
// takes the source's given and family names, birth date, gender, mobile,
// landline and address — each only where the source has one [inferred].
// The source is left as it is [inferred]: the vendor documents no change,
// and so the same migration repeated (a retry after a lost reply) is
// accepted again.
func (s *Simulator) migrateContact(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	id, ok := plainID(stateOf(r).pathID)
	if !ok {
		hydraError(w, http.StatusNotFound, "Not Found")
		return
	}
	if t.grant != GrantContactCredentials || t.subject != ContactIRI(a.ClientToken, id) {
		unauthorizedEndpoint(w)
		return
	}
	if !jsonContentType(w, r) {
		return
	}
	if _, ok := s.scope(w, r, a, t); !ok {
		return
	}
	var in struct {
		TargetContactID string `json:"targetContactId"`
		TargetClubID    string `json:"targetClubId"`
	}
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	if vs := required("targetContactId", in.TargetContactID, "targetClubId", in.TargetClubID); len(vs) > 0 {
		writeViolations(w, vs)
		return
	}
	targetID, ok := IDFromIRI(a.ClientToken, "contacts", in.TargetContactID)
	if !ok {
		itemNotFound(w, in.TargetContactID)
		return
	}
	club, ok := a.club(in.TargetClubID)
	if !ok {
		itemNotFound(w, in.TargetClubID)
		return
	}
	s.mu.Lock()
	fail := a.migrate(id, targetID, club.ID)
	s.mu.Unlock()
	if fail != nil {
		fail.write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// migrate copies contact src's data onto contact dst of club (caller holds
// Simulator.mu).
func (a *account) migrate(srcID, dstID, club int) *simError {
	src, dst := a.byID[srcID], a.byID[dstID]
	switch {
	case src == nil:
		return notFoundItem(ContactIRI(a.ClientToken, srcID))
	case dst == nil:
		return notFoundItem(ContactIRI(a.ClientToken, dstID))
	case src.archived() || src.c.State != StateProspect || dst.archived() || dst.c.State != StateTemp:
		return badRequest(CodeContactNotValid)
	case dst.clubID != club || src.clubID == dst.clubID:
		return badRequest(CodeClubNotValid)
	}
	from, to := src.c, &dst.c
	for _, f := range []struct{ from, to *string }{
		{&from.GivenName, &to.GivenName}, {&from.FamilyName, &to.FamilyName}, {&from.BirthDate, &to.BirthDate},
		{&from.Gender, &to.Gender}, {&from.Mobile, &to.Mobile}, {&from.Landline, &to.Landline},
	} {
		if *f.from != "" {
			*f.to = *f.from
		}
	}
	if from.Address != nil {
		addr := *from.Address
		addr.ID = "/" + a.ClientToken + "/addresses/" + strconv.Itoa(a.nextAddrID)
		a.nextAddrID++
		to.Address = &addr
	}
	return nil
}

// updateSaleContact serves PUT /sale/{saleId}/update_contact (and
// /sales/{saleId}/update_contact): 204 with no body, the sale's
// contactId, contactNumber, contactFamilyName and contactGivenName copied
// again from its contact. {saleId} is the plain id: an IRI there, an
// unknown sale or a sale whose contact does not exist gives 404. Any
// token may call it [inferred].
func (s *Simulator) updateSaleContact(w http.ResponseWriter, r *http.Request, a *account, t *simToken) {
	id, ok := plainID(stateOf(r).pathID)
	if !ok {
		hydraError(w, http.StatusNotFound, "Not Found")
		return
	}
	if _, ok := s.scope(w, r, a, t); !ok {
		return
	}
	s.mu.Lock()
	var fail *simError
	sale := a.salesByID[id]
	switch {
	case sale == nil:
		fail = notFoundItem("/" + a.ClientToken + "/sales/" + strconv.Itoa(id))
	case !a.refreshSale(sale):
		fail = notFoundItem(sale.ContactID)
	}
	s.mu.Unlock()
	if fail != nil {
		fail.write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// refreshSale copies the sale's contact data from its contact, and reports
// whether that contact exists (caller holds Simulator.mu).
func (a *account) refreshSale(sale *SimSaleState) bool {
	id, ok := IDFromIRI(a.ClientToken, "contacts", sale.ContactID)
	c := a.byID[id]
	if !ok || c == nil {
		return false
	}
	sale.ContactID, sale.ContactNumber = c.c.ID, c.c.Number
	sale.ContactFamilyName, sale.ContactGivenName = c.c.FamilyName, c.c.GivenName
	return true
}

// addSale stores sl, its contact data copied from its contact if it
// exists (caller holds Simulator.mu, or the account is not shared yet).
func (a *account) addSale(sl SimSale) *SimSaleState {
	id := sl.ID
	if id <= 0 || a.salesByID[id] != nil {
		id = a.nextSaleID
	}
	a.nextSaleID = max(a.nextSaleID, id+1)
	sale := &SimSaleState{ID: id, ContactID: sl.ContactID}
	a.refreshSale(sale)
	a.sales = append(a.sales, sale)
	a.salesByID[id] = sale
	return sale
}

// AddSale seeds a sale and returns it as stored: its ID (the next free one
// when sale.ID is 0 or used) and the contact data copied from its contact
// (empty if ContactID names no contact of the account). It returns the
// zero SimSaleState for an unknown clientToken.
func (s *Simulator) AddSale(clientToken string, sale SimSale) SimSaleState {
	a := s.accounts[clientToken]
	if a == nil {
		return SimSaleState{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return *a.addSale(sale)
}

// Sales returns the sales of clientToken in creation order (nil for an
// unknown clientToken).
func (s *Simulator) Sales(clientToken string) []SimSaleState {
	a := s.accounts[clientToken]
	if a == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SimSaleState, len(a.sales))
	for i, sl := range a.sales {
		out[i] = *sl
	}
	return out
}

// SMS returns the SMS the simulator sent (the last 10000), oldest first.
func (s *Simulator) SMS() []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMS(nil), s.sms...)
}

// LastCode returns the code of the last SMS sent for the signature request
// with that IRI ("/{clientToken}/signature_requests/{id}"): what the person
// would type in.
func (s *Simulator) LastCode(signatureRequestID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sms) - 1; i >= 0; i-- {
		if s.sms[i].SignatureRequestID == signatureRequestID {
			return s.sms[i].Code, true
		}
	}
	return "", false
}
