package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Event types: the subject of an event after EventSubjectPrefix, and the
// event's "type" field.
const (
	EvtResamaniaContactFound        = "resamania.contact_found"
	EvtResamaniaContactCreated      = "resamania.contact_created"
	EvtResamaniaContactMigrated     = "resamania.contact_migrated"
	EvtResamaniaSaleUpdated         = "resamania.sale_updated"
	EvtResamaniaProspectTransferred = "resamania.prospect_transferred"
	EvtMartaCustomerChecked         = "marta.customer_checked"
	EvtMartaAccountCreated          = "marta.account_created"
	EvtMartaCredentialsChanged      = "marta.credentials_changed"
	EvtMartaProfileCompleted        = "marta.profile_completed"
	EvtEngageContactCreated         = "engage.contact_created"
	EvtEngageContactUpdated         = "engage.contact_updated"
	EvtCloudSuiteUserRegistered     = "cloudsuite.user_registered"
	EvtCloudSuiteUserActivated      = "cloudsuite.user_activated"
	EvtOTPRequested                 = "otp.requested"
	EvtOTPRejected                  = "otp.rejected"
	EvtCompleted                    = "completed"
	EvtFailed                       = "failed"
	EvtRejected                     = "rejected"
)

// EventTypes returns every event type: step events, then the OTP events,
// then the three terminal ones.
func EventTypes() []string {
	return []string{
		EvtResamaniaContactFound, EvtResamaniaContactCreated, EvtResamaniaContactMigrated,
		EvtResamaniaSaleUpdated, EvtResamaniaProspectTransferred,
		EvtMartaCustomerChecked, EvtMartaAccountCreated, EvtMartaCredentialsChanged, EvtMartaProfileCompleted,
		EvtEngageContactCreated, EvtEngageContactUpdated,
		EvtCloudSuiteUserRegistered, EvtCloudSuiteUserActivated,
		EvtOTPRequested, EvtOTPRejected,
		EvtCompleted, EvtFailed, EvtRejected,
	}
}

// NewEvent returns a new, empty event of type t, or false if t is unknown.
func NewEvent(t string) (Event, bool) {
	var e Event
	switch t {
	case EvtResamaniaContactFound:
		e = &ResamaniaContactFound{}
	case EvtResamaniaContactCreated:
		e = &ResamaniaContactCreated{}
	case EvtResamaniaContactMigrated:
		e = &ResamaniaContactMigrated{}
	case EvtResamaniaSaleUpdated:
		e = &ResamaniaSaleUpdated{}
	case EvtResamaniaProspectTransferred:
		e = &ResamaniaProspectTransferred{}
	case EvtMartaCustomerChecked:
		e = &MartaCustomerChecked{}
	case EvtMartaAccountCreated:
		e = &MartaAccountCreated{}
	case EvtMartaCredentialsChanged:
		e = &MartaCredentialsChanged{}
	case EvtMartaProfileCompleted:
		e = &MartaProfileCompleted{}
	case EvtEngageContactCreated:
		e = &EngageContactCreated{}
	case EvtEngageContactUpdated:
		e = &EngageContactUpdated{}
	case EvtCloudSuiteUserRegistered:
		e = &CloudSuiteUserRegistered{}
	case EvtCloudSuiteUserActivated:
		e = &CloudSuiteUserActivated{}
	case EvtOTPRequested:
		e = &OTPRequested{}
	case EvtOTPRejected:
		e = &OTPRejected{}
	case EvtCompleted:
		e = &Completed{}
	case EvtFailed:
		e = &Failed{}
	case EvtRejected:
		e = &Rejected{}
	default:
		return nil, false
	}
	return e, true
}

// Envelope is the header every event has; event types embed it, so its
// fields sit beside the event's own in one flat JSON object.
type Envelope struct {
	// EventID is a UUID, unique per event; the publisher also sends it as
	// the Nats-Msg-Id header.
	EventID string `json:"eventId"`
	// Type is the event type, the subject after EventSubjectPrefix.
	Type string `json:"type"`
	// RegistrationID is the key of the flow (for a Rejected event, the
	// command's registrationId as given, possibly "").
	RegistrationID string `json:"registrationId"`
	// Flow is the flow's type: the command type that started it, e.g.
	// "resamania.register".
	Flow string `json:"flow"`
	// OccurredAt is when it happened, in UTC (RFC 3339 with fractional
	// seconds in JSON).
	OccurredAt time.Time `json:"occurredAt"`
}

// Meta returns the envelope itself; it is how Event exposes the envelope of
// any event type.
func (e *Envelope) Meta() *Envelope { return e }

// Event is implemented by every event type (with pointer receivers); each
// embeds Envelope.
type Event interface {
	// EventType is constant per Go type, e.g. EvtResamaniaContactCreated.
	EventType() string
	// Meta returns the event's envelope, for reading or filling it.
	Meta() *Envelope
}

// Stamp fills e's envelope, with Type from e.EventType() and at in UTC, and
// returns the subject to publish e on. eventID should be a UUID string.
func Stamp(e Event, eventID, registrationID, flow string, at time.Time) string {
	*e.Meta() = Envelope{
		EventID:        eventID,
		Type:           e.EventType(),
		RegistrationID: registrationID,
		Flow:           flow,
		OccurredAt:     at.UTC(),
	}
	return Subject(e)
}

// Subject returns the subject e is published on: EventSubjectPrefix +
// e.EventType().
func Subject(e Event) string { return EventSubjectPrefix + e.EventType() }

// DecodeEnvelope reads the envelope of an event body, for consumers that
// only need the header. It checks that eventId and type are present.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Envelope{}, fmt.Errorf("decode event envelope: %w", err)
	}
	var missing []string
	if env.EventID == "" {
		missing = append(missing, "eventId")
	}
	if env.Type == "" {
		missing = append(missing, "type")
	}
	if len(missing) > 0 {
		return Envelope{}, fmt.Errorf("decode event envelope: missing %s", strings.Join(missing, ", "))
	}
	return env, nil
}

// ErrUnknownEventType is returned (wrapped) by DecodeEvent for a type that
// NewEvent does not know.
var ErrUnknownEventType = errors.New("unknown event type")

// DecodeEvent reads an event body into the Go type of its "type".
func DecodeEvent(body []byte) (Event, error) {
	env, err := DecodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	e, ok := NewEvent(env.Type)
	if !ok {
		return nil, fmt.Errorf("decode event: %w %q", ErrUnknownEventType, env.Type)
	}
	if err := json.Unmarshal(body, e); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", env.Type, err)
	}
	return e, nil
}

// ResamaniaContact is a Resamania contact as events show it, with the
// vendor's field names; ID is the vendor's "@id". A contact found through
// the network search is a limited view: no email, mobile or address, a
// PartialPhoneNumber instead.
type ResamaniaContact struct {
	ID                 string   `json:"id"`                           // IRI, e.g. /demoapi/contacts/2974221
	Number             string   `json:"number,omitempty"`             // e.g. C2974221
	Email              string   `json:"email,omitempty"`              //
	GivenName          string   `json:"givenName,omitempty"`          //
	FamilyName         string   `json:"familyName,omitempty"`         //
	BirthDate          string   `json:"birthDate,omitempty"`          // YYYY-MM-DD
	Gender             string   `json:"gender,omitempty"`             // male, female, or as the vendor says
	State              string   `json:"state,omitempty"`              // prospect, temp, old_client, client
	ClubID             string   `json:"clubId,omitempty"`             // IRI of the contact's club
	Mobile             string   `json:"mobile,omitempty"`             // E.164
	PartialPhoneNumber string   `json:"partialPhoneNumber,omitempty"` // masked, e.g. ******1615
	Address            *Address `json:"address,omitempty"`            //
}

// Values of ResamaniaContactFound.Scope.
const (
	ScopeClub    = "club"    // found among the contacts of the registration's club
	ScopeNetwork = "network" // found in another club of the network
)

// ResamaniaContactFound (resamania.contact_found): the person exists already.
type ResamaniaContactFound struct {
	Envelope
	Contact ResamaniaContact `json:"contact"`
	// Scope is ScopeClub or ScopeNetwork.
	Scope string `json:"scope"`
}

// EventType implements Event.
func (*ResamaniaContactFound) EventType() string { return EvtResamaniaContactFound }

// ResamaniaContactCreated (resamania.contact_created): a contact was created.
type ResamaniaContactCreated struct {
	Envelope
	Contact ResamaniaContact `json:"contact"`
}

// EventType implements Event.
func (*ResamaniaContactCreated) EventType() string { return EvtResamaniaContactCreated }

// ResamaniaContactMigrated (resamania.contact_migrated): a prospect was
// migrated into a temp contact of another club.
type ResamaniaContactMigrated struct {
	Envelope
	SourceContactID string `json:"sourceContactId"`
	TargetContactID string `json:"targetContactId"`
	TargetClubID    string `json:"targetClubId"`
}

// EventType implements Event.
func (*ResamaniaContactMigrated) EventType() string { return EvtResamaniaContactMigrated }

// ResamaniaSaleUpdated (resamania.sale_updated): a sale's contact was
// refreshed.
type ResamaniaSaleUpdated struct {
	Envelope
	SaleID    string `json:"saleId"`    // plain id, e.g. "33"
	ContactID string `json:"contactId"` // IRI
}

// EventType implements Event.
func (*ResamaniaSaleUpdated) EventType() string { return EvtResamaniaSaleUpdated }

// ResamaniaProspectTransferred (resamania.prospect_transferred): the code
// was validated and the prospect now exists in the destination club under
// NewContactID.
type ResamaniaProspectTransferred struct {
	Envelope
	ContactID         string `json:"contactId"`    // the contact in the source club
	NewContactID      string `json:"newContactId"` // the contact in the destination club
	SourceClubID      string `json:"sourceClubId"`
	DestinationClubID string `json:"destinationClubId"`
}

// EventType implements Event.
func (*ResamaniaProspectTransferred) EventType() string { return EvtResamaniaProspectTransferred }

// Values of MartaCustomerChecked.Branch.
const (
	BranchNew        = "new"        // no customer: sign up as a new user
	BranchHasCard    = "has_card"   // a card exists but no account: take it over
	BranchRegistered = "registered" // already registered: the flow fails with CodeAlreadyRegistered
)

// MartaCustomerChecked (marta.customer_checked): the check-card answer.
type MartaCustomerChecked struct {
	Envelope
	// Branch is BranchNew, BranchHasCard or BranchRegistered.
	Branch string `json:"branch"`
	// CustomerID is MARTA's customerid, given for BranchHasCard.
	CustomerID string `json:"customerId,omitempty"`
}

// EventType implements Event.
func (*MartaCustomerChecked) EventType() string { return EvtMartaCustomerChecked }

// MartaAccountCreated (marta.account_created): a new user's account and
// virtual card exist.
type MartaAccountCreated struct {
	Envelope
	CustomerID string `json:"customerId,omitempty"`
	Username   string `json:"username"`
	Card       string `json:"card"`
	FidelyCode string `json:"fidelyCode,omitempty"` // the card's 14-digit barcode
}

// EventType implements Event.
func (*MartaAccountCreated) EventType() string { return EvtMartaAccountCreated }

// MartaCredentialsChanged (marta.credentials_changed): the holder of an
// existing card now has a username and password.
type MartaCredentialsChanged struct {
	Envelope
	CustomerID string `json:"customerId"`
	Username   string `json:"username"`
	Card       string `json:"card"`
}

// EventType implements Event.
func (*MartaCredentialsChanged) EventType() string { return EvtMartaCredentialsChanged }

// MartaProfileCompleted (marta.profile_completed): the personal data were
// written.
type MartaProfileCompleted struct {
	Envelope
	CustomerID string `json:"customerId,omitempty"`
	Card       string `json:"card,omitempty"`
	// Fields names the profile fields sent, sorted (names only, no values).
	Fields []string `json:"fields"`
}

// EventType implements Event.
func (*MartaProfileCompleted) EventType() string { return EvtMartaProfileCompleted }

// EngageContactCreated (engage.contact_created): a contact was created.
type EngageContactCreated struct {
	Envelope
	ContactID  int64            `json:"contactId"` // Engage's contactId
	Identifier EngageIdentifier `json:"identifier"`
}

// EventType implements Event.
func (*EngageContactCreated) EventType() string { return EvtEngageContactCreated }

// EngageContactUpdated (engage.contact_updated): an existing contact was
// updated.
type EngageContactUpdated struct {
	Envelope
	ContactID  int64            `json:"contactId"`
	Identifier EngageIdentifier `json:"identifier"`
	// Attributes names the attributes sent, sorted (names only).
	Attributes []string `json:"attributes,omitempty"`
}

// EventType implements Event.
func (*EngageContactUpdated) EventType() string { return EvtEngageContactUpdated }

// CloudSuiteUserRegistered (cloudsuite.user_registered): the poller found a
// new inactive user and started a flow for it (registrationId
// cloudsuite:<origin>:<userKey>).
type CloudSuiteUserRegistered struct {
	Envelope
	Origin  string `json:"origin"`
	UserKey string `json:"userKey"`
	Email   string `json:"email,omitempty"`
	// User is the user object as CloudSuite gave it.
	User json.RawMessage `json:"user,omitempty"`
	// Profile is the user's (first) profile as CloudSuite gave it
	// (GET /api/userprofile/{id}), if it has one.
	Profile json.RawMessage `json:"profile,omitempty"`
	// Profiles are all the user's profiles, in the order of the user's
	// user_profiles, when it has more than one.
	Profiles []json.RawMessage `json:"profiles,omitempty"`
}

// EventType implements Event.
func (*CloudSuiteUserRegistered) EventType() string { return EvtCloudSuiteUserRegistered }

// CloudSuiteUserActivated (cloudsuite.user_activated): the user was linked to
// the customer and the activation e-mail triggered.
type CloudSuiteUserActivated struct {
	Envelope
	Origin      string `json:"origin"`
	UserKey     string `json:"userKey"`
	CustomerKey string `json:"customerKey"`
	// CustomerCreated is true when the flow created (or replaced) the
	// customer from the command's customer object.
	CustomerCreated bool `json:"customerCreated"`
}

// EventType implements Event.
func (*CloudSuiteUserActivated) EventType() string { return EvtCloudSuiteUserActivated }

// Values of OTPRequested.Channel.
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
)

// OTPRequested (otp.requested): a code was sent; the flow waits for
// otp.submit until ExpiresAt.
type OTPRequested struct {
	Envelope
	// Channel is ChannelSMS or ChannelEmail.
	Channel string `json:"channel"`
	// MaskedDestination shows where the code went without giving it away
	// (see MaskDestination).
	MaskedDestination string `json:"maskedDestination"`
	// ExpiresAt is when the flow stops waiting, in UTC.
	ExpiresAt time.Time `json:"expiresAt"`
	// AttemptsLeft is how many codes may still be submitted.
	AttemptsLeft int `json:"attemptsLeft"`
}

// EventType implements Event.
func (*OTPRequested) EventType() string { return EvtOTPRequested }

// OTPRejected (otp.rejected): a submitted code was wrong; the flow keeps
// waiting if AttemptsLeft > 0.
type OTPRejected struct {
	Envelope
	AttemptsLeft int `json:"attemptsLeft"`
}

// EventType implements Event.
func (*OTPRejected) EventType() string { return EvtOTPRejected }

// MaskDestination hides most of an e-mail address or phone number for
// OTPRequested.MaskedDestination: "jane.doe@example.com" gives
// "j*******@example.com", "+393471234567" gives "*********4567" (the last
// four digits, as Resamania masks phone numbers).
func MaskDestination(dest string) string {
	if at := strings.LastIndexByte(dest, '@'); at > 0 {
		local := []rune(dest[:at])
		return string(local[0]) + strings.Repeat("*", len(local)-1) + dest[at:]
	}
	r := []rune(dest)
	if len(r) <= 4 {
		return strings.Repeat("*", len(r))
	}
	return strings.Repeat("*", len(r)-4) + string(r[len(r)-4:])
}

// Completed (completed) ends a flow that succeeded.
type Completed struct {
	Envelope
	// Result is the flow's result object, a value of the flow vendor's
	// result type: ResamaniaResult, MartaResult, EngageResult or
	// CloudSuiteResult. Decoding picks that type from Flow's vendor prefix
	// (see ResultFor).
	Result any `json:"result"`
}

// EventType implements Event.
func (*Completed) EventType() string { return EvtCompleted }

// UnmarshalJSON decodes the result into the result type of the flow's
// vendor, or keeps it as json.RawMessage for a flow of another vendor.
func (c *Completed) UnmarshalJSON(b []byte) error {
	var raw struct {
		Envelope
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	c.Envelope = raw.Envelope
	c.Result = nil
	if len(raw.Result) == 0 || string(raw.Result) == "null" {
		return nil
	}
	result, ok := ResultFor(raw.Flow)
	if !ok {
		c.Result = raw.Result
		return nil
	}
	if err := json.Unmarshal(raw.Result, result); err != nil {
		return fmt.Errorf("completed result of flow %s: %w", raw.Flow, err)
	}
	c.Result = reflect.ValueOf(result).Elem().Interface()
	return nil
}

// ResultFor returns a pointer to a new result of the type flows of that
// flow's vendor (the flow type up to its first dot) complete with, and false
// for a vendor that has none.
func ResultFor(flow string) (any, bool) {
	vendor, _, _ := strings.Cut(flow, ".")
	switch vendor {
	case VendorResamania:
		return &ResamaniaResult{}, true
	case VendorMarta:
		return &MartaResult{}, true
	case VendorEngage:
		return &EngageResult{}, true
	case VendorCloudSuite:
		return &CloudSuiteResult{}, true
	}
	return nil, false
}

// ResamaniaResult is the result of the Resamania flows (register, transfer,
// migrate): the contact the person now is in the club.
type ResamaniaResult struct {
	ContactID     string `json:"contactId"`     // IRI
	ContactNumber string `json:"contactNumber"` // e.g. C2974221
	ClubID        string `json:"clubId"`        // IRI
	// Created is true when the flow created the contact (including the
	// temp contact of a migration), false when it existed.
	Created bool `json:"created"`
	// Transferred is true when a prospect of another club was transferred.
	Transferred bool `json:"transferred,omitempty"`
	// Migrated is true when a prospect was migrated into the contact.
	Migrated bool `json:"migrated,omitempty"`
	// SaleID is the sale whose contact was refreshed, if any.
	SaleID string `json:"saleId,omitempty"`
}

// MartaResult is the result of marta.signup.
type MartaResult struct {
	CustomerID string `json:"customerId,omitempty"`
	Username   string `json:"username"`
	Card       string `json:"card"`
	FidelyCode string `json:"fidelyCode,omitempty"`
	// Branch is the check-card branch taken: BranchNew or BranchHasCard.
	Branch string `json:"branch"`
}

// EngageResult is the result of engage.upsert.
type EngageResult struct {
	ContactID int64 `json:"contactId"`
	// Created is true when the contact was created, false when updated.
	Created bool `json:"created"`
}

// CloudSuiteResult is the result of cloudsuite.activate.
type CloudSuiteResult struct {
	Origin          string `json:"origin"`
	UserKey         string `json:"userKey"`
	CustomerKey     string `json:"customerKey"`
	CustomerCreated bool   `json:"customerCreated"`
}

// Failure codes of a Failed event: stable, part of the contract.
const (
	CodeRequiredFields         = "required_fields"          // the vendor wants fields the command did not give
	CodeProspectElsewhere      = "prospect_elsewhere"       // a prospect of another club, and onProspectElsewhere is reject
	CodeContactNotTransferable = "contact_not_transferable" // not a prospect or former client, or already in that club
	CodeAccessDenied           = "access_denied"            // the vendor account may not do this (scope, data sharing)
	CodeAlreadyRegistered      = "already_registered"       // MARTA: the person has an account already
	CodeUsernameTaken          = "username_taken"           // MARTA: the username belongs to someone else
	CodeEmailTaken             = "email_taken"              // the e-mail address is in use
	CodeMandatoryFields        = "mandatory_fields"         // MARTA: the campaign's mandatory profile fields are missing
	CodeOTPExpired             = "otp_expired"              // no code submitted in time
	CodeOTPAttemptsExceeded    = "otp_attempts_exceeded"    // too many wrong codes
	CodeCancelled              = "cancelled"                // a cancel command ended the flow
	CodeVendorRejected         = "vendor_rejected"          // any other permanent vendor refusal
	CodeVendorUnavailable      = "vendor_unavailable"       // the vendor kept failing until the retry budget ran out
)

// FailureCodes returns every failure code.
func FailureCodes() []string {
	return []string{
		CodeRequiredFields, CodeProspectElsewhere, CodeContactNotTransferable, CodeAccessDenied,
		CodeAlreadyRegistered, CodeUsernameTaken, CodeEmailTaken, CodeMandatoryFields,
		CodeOTPExpired, CodeOTPAttemptsExceeded, CodeCancelled, CodeVendorRejected, CodeVendorUnavailable,
	}
}

// Failed (failed) ends a flow that failed.
type Failed struct {
	Envelope
	Error ErrorInfo `json:"error"`
}

// EventType implements Event.
func (*Failed) EventType() string { return EvtFailed }

// ErrorInfo says why a flow failed: the "error" object of a Failed event.
type ErrorInfo struct {
	// Code is one of the Code… constants.
	Code string `json:"code"`
	// Message says what happened, for people.
	Message string `json:"message"`
	// Fields lists the fields at fault, if known (e.g. the vendor's
	// required or mandatory fields).
	Fields []FieldError `json:"fields,omitempty"`
	// Vendor is the vendor that failed, if one did.
	Vendor string `json:"vendor,omitempty"`
	// VendorStatus is the vendor's HTTP status, if it answered.
	VendorStatus int `json:"vendorStatus,omitempty"`
	// VendorCode is the vendor's own error code or message key
	// (api.error.contact.email-already-used, a MARTA AnswerCode, …).
	VendorCode string `json:"vendorCode,omitempty"`
}

// Rejected (rejected) answers a command that was itself invalid. It is not
// retried; upstream has to send a corrected command.
type Rejected struct {
	Envelope
	// Command is the rejected command's type; "" when its subject was not a
	// command subject.
	Command string `json:"command,omitempty"`
	// Errors lists every invalid field.
	Errors []FieldError `json:"errors"`
}

// EventType implements Event.
func (*Rejected) EventType() string { return EvtRejected }

// NewRejected returns the Rejected event for err; Stamp it with
// err.RegistrationID.
func NewRejected(err *InvalidCommandError) *Rejected {
	return &Rejected{Command: err.CommandType, Errors: append([]FieldError(nil), err.Errors...)}
}
