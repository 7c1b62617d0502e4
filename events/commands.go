package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/registrar-dev/registrar/secret"
)

// Command types: the subject of a command after CommandSubjectPrefix.
const (
	CmdResamaniaRegister  = "resamania.register"
	CmdResamaniaTransfer  = "resamania.transfer"
	CmdResamaniaMigrate   = "resamania.migrate"
	CmdMartaSignup        = "marta.signup"
	CmdEngageUpsert       = "engage.upsert"
	CmdCloudSuiteActivate = "cloudsuite.activate"
	CmdOTPSubmit          = "otp.submit"
	CmdOTPResend          = "otp.resend"
	CmdCancel             = "cancel"
)

// CommandTypes returns every command type, flow-starting ones first.
func CommandTypes() []string {
	return []string{
		CmdResamaniaRegister, CmdResamaniaTransfer, CmdResamaniaMigrate,
		CmdMartaSignup, CmdEngageUpsert, CmdCloudSuiteActivate,
		CmdOTPSubmit, CmdOTPResend, CmdCancel,
	}
}

// CommandSubject returns the subject a command of type commandType is
// published on.
func CommandSubject(commandType string) string { return CommandSubjectPrefix + commandType }

// Command is implemented by every command type (with pointer receivers).
type Command interface {
	// CommandType is the command's type, e.g. CmdResamaniaRegister.
	CommandType() string
	// RegistrationID is the key of the flow the command starts or steers.
	RegistrationID() string
	// TenantName is the tenant of a flow-starting command; "" for the
	// commands that steer a running flow (otp.submit, otp.resend, cancel).
	TenantName() string
	// Vendor is the vendor the command's flow works with (VendorResamania,
	// …); "" for steering commands.
	Vendor() string
}

// newCommand returns an empty command of type t, or nil if t is unknown.
func newCommand(t string) command {
	switch t {
	case CmdResamaniaRegister:
		return &ResamaniaRegister{}
	case CmdResamaniaTransfer:
		return &ResamaniaTransfer{}
	case CmdResamaniaMigrate:
		return &ResamaniaMigrate{}
	case CmdMartaSignup:
		return &MartaSignup{}
	case CmdEngageUpsert:
		return &EngageUpsert{}
	case CmdCloudSuiteActivate:
		return &CloudSuiteActivate{}
	case CmdOTPSubmit:
		return &OTPSubmit{}
	case CmdOTPResend:
		return &OTPResend{}
	case CmdCancel:
		return &Cancel{}
	}
	return nil
}

// Start holds the fields of every command that starts a flow. It is
// embedded, so its JSON fields are those of the command itself.
type Start struct {
	// ID is the registrationId: 1–128 characters of A-Z a-z 0-9 . _ : -,
	// chosen by upstream, the key of the flow.
	ID string `json:"registrationId"`
	// Tenant names a vendor account of the service's configuration.
	Tenant string `json:"tenant"`
}

// RegistrationID implements Command.
func (s *Start) RegistrationID() string { return s.ID }

// TenantName implements Command.
func (s *Start) TenantName() string { return s.Tenant }

// Steer holds the fields of every command that steers a running flow, which
// it finds by registrationId alone.
type Steer struct {
	// ID is the registrationId of the flow to steer.
	ID string `json:"registrationId"`
}

// RegistrationID implements Command.
func (s *Steer) RegistrationID() string { return s.ID }

// TenantName implements Command: steering commands have no tenant.
func (s *Steer) TenantName() string { return "" }

// Vendor implements Command: steering commands have no vendor.
func (s *Steer) Vendor() string { return "" }

// ResamaniaRegister (resamania.register) registers a person online in a
// Resamania club: find or create the contact, deal with a prospect found in
// another club of the network, and refresh the sale if there is one.
type ResamaniaRegister struct {
	Start
	// ClubID is the club's IRI, e.g. "/demoapi/clubs/123".
	ClubID string `json:"clubId"`
	// NetworkNodeID is the IRI of the club's network node.
	NetworkNodeID string `json:"networkNodeId"`
	// SaleID is the sale's plain id ("33"), optional: the sale whose contact
	// is refreshed once the contact exists.
	SaleID string `json:"saleId,omitempty"`
	// OnProspectElsewhere says what to do when the person is a prospect of
	// another club: ProspectTransfer (the default when absent),
	// ProspectMigrate or ProspectReject.
	OnProspectElsewhere string `json:"onProspectElsewhere"`
	// Contact is the person to register.
	Contact NewContact `json:"contact"`
}

// Values of ResamaniaRegister.OnProspectElsewhere.
const (
	ProspectTransfer = "transfer" // transfer the prospect to this club (SMS code)
	ProspectMigrate  = "migrate"  // migrate the prospect into a new temp contact
	ProspectReject   = "reject"   // fail with CodeProspectElsewhere
)

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *ResamaniaRegister) UnmarshalJSON(b []byte) error {
	*c = ResamaniaRegister{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*ResamaniaRegister) CommandType() string { return CmdResamaniaRegister }

// Vendor implements Command.
func (*ResamaniaRegister) Vendor() string { return VendorResamania }

// NewContact is the person a ResamaniaRegister creates, with the field names
// of Resamania's POST /contacts.
type NewContact struct {
	Email      string `json:"email"`      // required, an e-mail address
	GivenName  string `json:"givenName"`  // required
	FamilyName string `json:"familyName"` // required
	BirthDate  string `json:"birthDate"`  // required, YYYY-MM-DD
	// Gender is optional and passed on as given: Resamania uses "male" and
	// "female"; any other non-empty string of up to 32 characters is
	// accepted, for the vendor to judge.
	Gender   string   `json:"gender,omitempty"`
	Mobile   string   `json:"mobile,omitempty"`   // optional, E.164 (+33612345678)
	Address  *Address `json:"address,omitempty"`  // optional
	SourceID string   `json:"sourceId,omitempty"` // optional, the IRI of a contact source
}

// Address is a postal address, with Resamania's field names. Every field is
// optional.
type Address struct {
	StreetAddress   string `json:"streetAddress,omitempty"`
	PostalCode      string `json:"postalCode,omitempty"`
	AddressLocality string `json:"addressLocality,omitempty"`
	AddressCountry  string `json:"addressCountry,omitempty"`
}

// ResamaniaTransfer (resamania.transfer) transfers a prospect to another
// club: the vendor sends the contact an SMS code, the flow waits for
// otp.submit, and validating the code creates a new contact in the
// destination club.
type ResamaniaTransfer struct {
	Start
	ContactID                string `json:"contactId"`                // the contact's IRI
	SourceClubID             string `json:"sourceClubId"`             // the contact's current club (IRI)
	DestinationClubID        string `json:"destinationClubId"`        // the club to transfer to (IRI), not SourceClubID
	DestinationNetworkNodeID string `json:"destinationNetworkNodeId"` // the destination club's network node (IRI)
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *ResamaniaTransfer) UnmarshalJSON(b []byte) error {
	*c = ResamaniaTransfer{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*ResamaniaTransfer) CommandType() string { return CmdResamaniaTransfer }

// Vendor implements Command.
func (*ResamaniaTransfer) Vendor() string { return VendorResamania }

// ResamaniaMigrate (resamania.migrate) migrates a prospect into a temp
// contact of another club and, given a sale, refreshes the sale's contact.
type ResamaniaMigrate struct {
	Start
	SourceContactID string `json:"sourceContactId"` // the prospect (IRI)
	// SourceContactEmail is the prospect's e-mail: the migration is
	// authenticated as that contact.
	SourceContactEmail string `json:"sourceContactEmail"`
	TargetContactID    string `json:"targetContactId"` // the temp contact (IRI), not SourceContactID
	TargetClubID       string `json:"targetClubId"`    // the temp contact's club (IRI)
	SaleID             string `json:"saleId,omitempty"`
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *ResamaniaMigrate) UnmarshalJSON(b []byte) error {
	*c = ResamaniaMigrate{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*ResamaniaMigrate) CommandType() string { return CmdResamaniaMigrate }

// Vendor implements Command.
func (*ResamaniaMigrate) Vendor() string { return VendorResamania }

// MartaSignup (marta.signup) signs a person up for a MARTA loyalty card:
// check the card, verify the username with a one-time code, create or take
// over the account, then fill in the profile.
type MartaSignup struct {
	Start
	// CampaignID is the campaign's id as a string of digits. The body may
	// give it as a JSON number (12) or a string of digits ("12").
	CampaignID string `json:"campaignId"`
	// CategoryID is the id of the virtual card category to activate; like
	// CampaignID, a JSON number or a string of digits.
	CategoryID string `json:"categoryId"`
	// DeviceType is DeviceBrowser, DeviceAndroid or DeviceIOS (a JSON number).
	DeviceType int `json:"deviceType"`
	// Username is an e-mail address or an E.164 mobile number; it is where
	// the one-time code is sent. See UsernameIsMobile.
	Username string `json:"username"`
	// Card is the number of a card the person already has, optional.
	Card string `json:"card,omitempty"`
	// Password is the account's new password (1–128 characters). It
	// marshals as "[redacted]".
	Password secret.String `json:"password"`
	// Profile is the personal data and consents to fill in after sign-up.
	Profile MartaProfile `json:"profile"`
}

// Values of MartaSignup.DeviceType.
const (
	DeviceBrowser = 1
	DeviceAndroid = 2
	DeviceIOS     = 3
)

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *MartaSignup) UnmarshalJSON(b []byte) error {
	*c = MartaSignup{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*MartaSignup) CommandType() string { return CmdMartaSignup }

// Vendor implements Command.
func (*MartaSignup) Vendor() string { return VendorMarta }

// UsernameIsMobile reports whether Username is a mobile number rather than
// an e-mail address (DecodeCommand accepts nothing else).
func (c *MartaSignup) UsernameIsMobile() bool { return strings.HasPrefix(c.Username, "+") }

// MartaProfile is the personal data of a MartaSignup, with the keys of the
// campaign's data fields (GET /customer/customerdatafields): the four the
// contract names are fields, consents are booleans by name, and every other
// key is kept in Extra, so the data-entry step can check whichever fields
// the campaign marks mandatory (see Lookup and Missing).
//
// It marshals as one flat object: the named fields, "consents", and the
// Extra keys beside them.
type MartaProfile struct {
	Name      string `json:"name,omitempty"`
	Surname   string `json:"surname,omitempty"`
	Gender    string `json:"gender,omitempty"`    // M, F or N
	Birthdate string `json:"birthdate,omitempty"` // YYYY-MM-DD
	// Consents holds privacy consents by the campaign's names
	// (usedforpromotions, usedforstatistics, usedbyothers, …).
	Consents map[string]bool `json:"consents,omitempty"`
	// Extra holds the other profile keys. Values are strings, booleans or
	// json.Number (DecodeCommand keeps numbers as written).
	Extra map[string]any `json:"-"`
}

// profileKey reports whether k is a key of MartaProfile's own fields, never
// one of Extra.
func profileKey(k string) bool {
	switch k {
	case "name", "surname", "gender", "birthdate", "consents":
		return true
	}
	return false
}

// MarshalJSON writes the profile as one flat object.
func (p MartaProfile) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extra)+5)
	for k, v := range p.Extra {
		if !profileKey(k) {
			m[k] = v
		}
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("name", p.Name)
	put("surname", p.Surname)
	put("gender", p.Gender)
	put("birthdate", p.Birthdate)
	if len(p.Consents) > 0 {
		m["consents"] = p.Consents
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a flat profile object without validating it (that is
// DecodeCommand's job); numbers in Extra stay json.Number.
func (p *MartaProfile) UnmarshalJSON(b []byte) error {
	var known struct {
		Name      string          `json:"name"`
		Surname   string          `json:"surname"`
		Gender    string          `json:"gender"`
		Birthdate string          `json:"birthdate"`
		Consents  map[string]bool `json:"consents"`
	}
	if err := json.Unmarshal(b, &known); err != nil {
		return fmt.Errorf("marta profile: %w", err)
	}
	var all map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&all); err != nil {
		return fmt.Errorf("marta profile: %w", err)
	}
	*p = MartaProfile{Name: known.Name, Surname: known.Surname, Gender: known.Gender,
		Birthdate: known.Birthdate, Consents: known.Consents}
	for k, v := range all {
		if profileKey(k) {
			continue
		}
		if p.Extra == nil {
			p.Extra = map[string]any{}
		}
		p.Extra[k] = v
	}
	return nil
}

// Fields returns the profile as MARTA's PUT /customer takes it: one flat map
// of the named fields that are set, every consent and every Extra key (a
// consent wins over an Extra key of the same name).
func (p MartaProfile) Fields() map[string]any {
	m := make(map[string]any, len(p.Extra)+len(p.Consents)+4)
	for k, v := range p.Extra {
		m[k] = v
	}
	for k, v := range p.Consents {
		m[k] = v
	}
	for k, v := range map[string]string{"name": p.Name, "surname": p.Surname, "gender": p.Gender, "birthdate": p.Birthdate} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// Lookup finds a field of Fields by a campaign's data-field name: the exact
// key first, then the only key equal to it ignoring case (MARTA spells the
// same field usedforpromotions and usedForPromotions in different places).
func (p MartaProfile) Lookup(name string) (any, bool) {
	fields := p.Fields()
	if v, ok := fields[name]; ok {
		return v, true
	}
	var keys []string
	for k := range fields {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 {
		return nil, false
	}
	return fields[keys[0]], true
}

// Missing returns, sorted, the names that Lookup does not find or finds as
// an empty string: the mandatory fields the profile lacks.
func (p MartaProfile) Missing(names []string) []string {
	var missing []string
	for _, n := range names {
		if v, ok := p.Lookup(n); !ok || v == "" {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	return missing
}

// EngageUpsert (engage.upsert) creates a Mapp Engage contact, or updates it
// when one with the identifier exists.
type EngageUpsert struct {
	Start
	// Identifier finds the contact.
	Identifier EngageIdentifier `json:"identifier"`
	// EmailAddress is optional, an e-mail address.
	EmailAddress string `json:"emailAddress,omitempty"`
	// MobileNumber is optional, E.164.
	MobileNumber string `json:"mobileNumber,omitempty"`
	// Attributes are set by name (Engage merges them by name). Values are
	// JSON strings (up to 4096 characters): write numbers and booleans as
	// strings, as Engage stores them.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// EngageIdentifier is Engage's contact identifier.
type EngageIdentifier struct {
	// Type is one of IdentifierEmail, IdentifierMobile, IdentifierAppAlias,
	// IdentifierExternal, IdentifierID (case-sensitive, as Engage wants it).
	Type string `json:"type"`
	// Value is an e-mail address for EMAIL, an E.164 number for MOBILE, a
	// string of digits (Engage's contactId) for ID, up to 256 characters
	// otherwise.
	Value string `json:"value"`
}

// Values of EngageIdentifier.Type.
const (
	IdentifierEmail    = "EMAIL"
	IdentifierMobile   = "MOBILE"
	IdentifierAppAlias = "APP_ALIAS"
	IdentifierExternal = "EXTERNAL"
	IdentifierID       = "ID"
)

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *EngageUpsert) UnmarshalJSON(b []byte) error {
	*c = EngageUpsert{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*EngageUpsert) CommandType() string { return CmdEngageUpsert }

// Vendor implements Command.
func (*EngageUpsert) Vendor() string { return VendorEngage }

// CloudSuiteActivate (cloudsuite.activate) links a reviewed CloudSuite user
// to a customer, creating the customer first when Customer is given, and
// triggers the activation e-mail.
type CloudSuiteActivate struct {
	Start
	// UserKey is the user's key, a UUID (36 characters).
	UserKey string `json:"userKey"`
	// CustomerKey is the customer's key: 1–128 characters, none of them
	// whitespace, a control character, '/', '?', '#' or '%' (it goes in a
	// URL path).
	CustomerKey string `json:"customerKey"`
	// Customer, optional, is the JSON object of the customer to create (or
	// replace) under CustomerKey, passed to CloudSuite as is.
	Customer json.RawMessage `json:"customer,omitempty"`
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *CloudSuiteActivate) UnmarshalJSON(b []byte) error {
	*c = CloudSuiteActivate{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*CloudSuiteActivate) CommandType() string { return CmdCloudSuiteActivate }

// Vendor implements Command.
func (*CloudSuiteActivate) Vendor() string { return VendorCloudSuite }

// OTPSubmit (otp.submit) gives the one-time code the person typed to the
// flow that waits for it.
type OTPSubmit struct {
	Steer
	// Code is 4–8 digits. It marshals as "[redacted]".
	Code secret.String `json:"code"`
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *OTPSubmit) UnmarshalJSON(b []byte) error {
	*c = OTPSubmit{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*OTPSubmit) CommandType() string { return CmdOTPSubmit }

// OTPResend (otp.resend) asks the vendor to send a new code.
type OTPResend struct {
	Steer
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *OTPResend) UnmarshalJSON(b []byte) error {
	*c = OTPResend{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*OTPResend) CommandType() string { return CmdOTPResend }

// Cancel (cancel) ends a waiting flow.
type Cancel struct {
	Steer
	// Reason is optional, up to 512 characters; it ends up in the failed
	// event's message.
	Reason string `json:"reason,omitempty"`
}

// UnmarshalJSON decodes and validates like DecodeCommand, without the
// tenant check; its error is an *InvalidCommandError.
func (c *Cancel) UnmarshalJSON(b []byte) error {
	*c = Cancel{}
	return unmarshalCommand(b, c)
}

// CommandType implements Command.
func (*Cancel) CommandType() string { return CmdCancel }
