package events

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/registrar-dev/registrar/secret"
)

// Field names of errors about the message rather than one of its fields.
const (
	fieldSubject = "subject"
	fieldBody    = "body"
)

// FieldError names one invalid field with its JSON path, such as
// "contact.email", "profile.consents.usedbyothers" or "attributes.City".
// Problems with the message as a whole are on field "body" (size, encoding,
// JSON syntax, nesting) or "subject" (not a command subject).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InvalidCommandError is the error DecodeCommand returns for any invalid
// command: it holds everything a Rejected event needs (see NewRejected).
// Such a command is never retried.
type InvalidCommandError struct {
	// CommandType is the command type from the subject; "" if the subject is
	// not a known command subject.
	CommandType string
	// RegistrationID is, best effort, the body's registrationId string as
	// given (even if invalid), cut to at most 128 bytes; "" when the body had
	// none or could not be read that far.
	RegistrationID string
	// Errors lists every problem found, at least one, sorted by field.
	Errors []FieldError
}

// Error lists the invalid fields, e.g. `invalid resamania.register command
// "r-1": clubId: must be an IRI such as /demoapi/clubs/123`.
func (e *InvalidCommandError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	if e.CommandType != "" {
		b.WriteString(e.CommandType + " ")
	}
	b.WriteString("command")
	if e.RegistrationID != "" {
		b.WriteString(" " + strconv.Quote(e.RegistrationID))
	}
	for i, fe := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Field + ": " + fe.Message)
	}
	return b.String()
}

// TenantChecker tells whether a tenant exists and whether it configures a
// vendor (config.Config implements it). The text of the error it returns
// becomes the message of the FieldError for field "tenant".
type TenantChecker interface {
	CheckTenant(tenant, vendor string) error
}

// command is a Command that can read itself from a parsed body.
type command interface {
	Command
	decode(w walker)
}

// DecodeCommand decodes and validates the body of a message published on
// subject. It returns the command (a pointer to one of the command types)
// or an *InvalidCommandError listing every problem found, never both.
//
// The tenant of a flow-starting command is checked with tenants (with the
// command's vendor); a nil tenants skips that check. See the package
// documentation for the decoding rules.
func DecodeCommand(subject string, body []byte, tenants TenantChecker) (Command, error) {
	invalid := &InvalidCommandError{}
	var errs []FieldError
	commandType, isCmd := strings.CutPrefix(subject, CommandSubjectPrefix)
	cmd := newCommand(commandType)
	if !isCmd || cmd == nil {
		errs = append(errs, FieldError{Field: fieldSubject, Message: fmt.Sprintf(
			"%q is not a command subject: want %s followed by one of %s",
			subject, CommandSubjectPrefix, strings.Join(CommandTypes(), ", "))})
		cmd = nil
	} else {
		invalid.CommandType = commandType
	}
	var bodyErrs []FieldError
	invalid.RegistrationID, bodyErrs = decodeBody(body, cmd)
	errs = append(errs, bodyErrs...)
	if cmd != nil && !hasField(bodyErrs, fieldBody) && tenants != nil {
		if t := cmd.TenantName(); t != "" {
			if err := tenants.CheckTenant(t, cmd.Vendor()); err != nil {
				errs = append(errs, FieldError{Field: "tenant", Message: err.Error()})
			}
		}
	}
	if len(errs) > 0 {
		invalid.Errors = sortErrors(errs)
		return nil, invalid
	}
	return cmd, nil
}

// decodeBody reads body into cmd, or only checks its registrationId when
// cmd is nil. It returns the body's registrationId as given (see
// InvalidCommandError.RegistrationID) and every problem found.
func decodeBody(body []byte, cmd command) (string, []FieldError) {
	if len(body) > MaxBodySize {
		return "", []FieldError{{Field: fieldBody, Message: fmt.Sprintf(
			"is %d bytes long, more than the limit of %d", len(body), MaxBodySize)}}
	}
	root, errs := parseObject(body)
	if hasField(errs, fieldBody) {
		return rawRegistrationID(root), errs
	}
	w := walker{errs: &errs, m: root}
	if cmd == nil {
		w.registrationID()
	} else {
		cmd.decode(w)
	}
	return rawRegistrationID(root), errs
}

// unmarshalCommand is the UnmarshalJSON of every command type: the rules of
// DecodeCommand, without the tenant check. c must be zero.
func unmarshalCommand(b []byte, c command) error {
	id, errs := decodeBody(b, c)
	if len(errs) > 0 {
		return &InvalidCommandError{CommandType: c.CommandType(), RegistrationID: id, Errors: sortErrors(errs)}
	}
	return nil
}

func hasField(errs []FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// sortErrors sorts by field, keeping the order of a field's messages, and
// drops repeated errors.
func sortErrors(errs []FieldError) []FieldError {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	out := errs[:0]
	for i, e := range errs {
		if i > 0 && e == errs[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// rawRegistrationID returns root's registrationId string cut to 128 bytes
// on a character boundary, or "".
func rawRegistrationID(root map[string]any) string {
	s, _ := root["registrationId"].(string)
	if len(s) <= 128 {
		return s
	}
	cut := 128
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func (s *Start) decode(w walker) {
	s.ID = w.registrationID()
	s.Tenant = w.str("tenant", required, text(128))
}

func (s *Steer) decode(w walker) { s.ID = w.registrationID() }

func (c *ResamaniaRegister) decode(w walker) {
	c.Start.decode(w)
	c.ClubID = w.str("clubId", required, clubIRI)
	c.NetworkNodeID = w.str("networkNodeId", required, nodeIRI)
	c.SaleID = w.str("saleId", optional, saleIDRule)
	c.OnProspectElsewhere = w.str("onProspectElsewhere", optional, oneOf(ProspectTransfer, ProspectMigrate, ProspectReject))
	if c.OnProspectElsewhere == "" {
		c.OnProspectElsewhere = ProspectTransfer
	}
	if cw, ok := w.object("contact", required); ok {
		c.Contact.decode(cw)
	}
	sameClientToken(w.errs, "clubId", c.ClubID, "networkNodeId", c.NetworkNodeID, "contact.sourceId", c.Contact.SourceID)
}

func (c *NewContact) decode(w walker) {
	c.Email = w.str("email", required, emailRule)
	c.GivenName = w.str("givenName", required, text(maxText))
	c.FamilyName = w.str("familyName", required, text(maxText))
	c.BirthDate = w.str("birthDate", required, dateRule)
	c.Gender = w.str("gender", optional, text(32))
	c.Mobile = w.str("mobile", optional, mobileRule)
	c.SourceID = w.str("sourceId", optional, sourceIRI)
	if aw, ok := w.object("address", optional); ok {
		a := Address{
			StreetAddress:   aw.str("streetAddress", optional, text(maxText)),
			PostalCode:      aw.str("postalCode", optional, text(32)),
			AddressLocality: aw.str("addressLocality", optional, text(maxText)),
			AddressCountry:  aw.str("addressCountry", optional, text(maxText)),
		}
		if a != (Address{}) {
			c.Address = &a
		}
	}
}

func (c *ResamaniaTransfer) decode(w walker) {
	c.Start.decode(w)
	c.ContactID = w.str("contactId", required, contactIRI)
	c.SourceClubID = w.str("sourceClubId", required, clubIRI)
	c.DestinationClubID = w.str("destinationClubId", required, clubIRI)
	c.DestinationNetworkNodeID = w.str("destinationNetworkNodeId", required, nodeIRI)
	if c.DestinationClubID != "" && c.DestinationClubID == c.SourceClubID {
		w.fail("destinationClubId", "must differ from sourceClubId")
	}
	sameClientToken(w.errs, "contactId", c.ContactID, "sourceClubId", c.SourceClubID,
		"destinationClubId", c.DestinationClubID, "destinationNetworkNodeId", c.DestinationNetworkNodeID)
}

func (c *ResamaniaMigrate) decode(w walker) {
	c.Start.decode(w)
	c.SourceContactID = w.str("sourceContactId", required, contactIRI)
	c.SourceContactEmail = w.str("sourceContactEmail", required, emailRule)
	c.TargetContactID = w.str("targetContactId", required, contactIRI)
	c.TargetClubID = w.str("targetClubId", required, clubIRI)
	c.SaleID = w.str("saleId", optional, saleIDRule)
	if c.TargetContactID != "" && c.TargetContactID == c.SourceContactID {
		w.fail("targetContactId", "must differ from sourceContactId")
	}
	sameClientToken(w.errs, "sourceContactId", c.SourceContactID, "targetContactId", c.TargetContactID, "targetClubId", c.TargetClubID)
}

// sameClientToken checks that the IRIs given as field, value pairs (empty
// values are skipped) share the clientToken of the first one.
func sameClientToken(errs *[]FieldError, fieldValues ...string) {
	var first, token string
	for i := 0; i+1 < len(fieldValues); i += 2 {
		field, value := fieldValues[i], fieldValues[i+1]
		t, _, ok := iri(value)
		if !ok {
			continue
		}
		if token == "" {
			first, token = field, t
			continue
		}
		if t != token {
			*errs = append(*errs, FieldError{Field: field, Message: fmt.Sprintf(
				"must have the clientToken of %s (/%s/…)", first, token)})
		}
	}
}

func (c *MartaSignup) decode(w walker) {
	c.Start.decode(w)
	c.CampaignID = w.idNumber("campaignId", required)
	c.CategoryID = w.idNumber("categoryId", required)
	if d, ok := w.integer("deviceType", required); ok {
		if d < DeviceBrowser || d > DeviceIOS {
			w.fail("deviceType", "must be 1 (browser), 2 (Android) or 3 (iOS)")
		} else {
			c.DeviceType = int(d)
		}
	}
	c.Username = w.str("username", required, func(s string) string {
		if (len(s) <= maxEmail && isEmail(s)) || isE164(s) {
			return ""
		}
		return "must be an e-mail address or a mobile number in E.164 form such as +393471234567"
	})
	c.Card = w.str("card", optional, cardRule)
	c.Password = secret.New(w.str("password", required, func(s string) string {
		if utf8.RuneCountInString(s) > 128 {
			return "must be at most 128 characters long"
		}
		return ""
	}))
	if pw, ok := w.object("profile", required); ok {
		c.Profile.decode(pw)
	}
}

func cardRule(s string) string {
	if len(s) > 64 {
		return "must be at most 64 characters long"
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return "must hold only A-Z a-z 0-9 . _ -"
		}
	}
	return ""
}

const (
	maxProfileKeys = 100
	maxProfileKey  = 64
)

func (p *MartaProfile) decode(w walker) {
	p.Name = w.str("name", optional, text(maxText))
	p.Surname = w.str("surname", optional, text(maxText))
	p.Gender = w.str("gender", optional, oneOf("M", "F", "N"))
	p.Birthdate = w.str("birthdate", optional, dateRule)
	if len(w.m) > maxProfileKeys {
		*w.errs = append(*w.errs, FieldError{Field: w.path, Message: fmt.Sprintf("must have at most %d keys", maxProfileKeys)})
		return
	}
	if cw, ok := w.object("consents", optional); ok {
		for k, v := range cw.m {
			if !validKey(cw, k) || v == nil {
				continue
			}
			b, isBool := v.(bool)
			if !isBool {
				cw.fail(k, "must be true or false")
				continue
			}
			if p.Consents == nil {
				p.Consents = map[string]bool{}
			}
			p.Consents[k] = b
		}
	}
	for k, v := range w.m {
		if profileKey(k) || !validKey(w, k) || v == nil {
			continue
		}
		switch v := v.(type) {
		case string:
			if v == "" {
				continue
			}
			if msg := text(maxText)(v); msg != "" {
				w.fail(k, msg)
				continue
			}
		case json.Number, bool:
		default:
			w.fail(k, "must be a string, a number or a boolean")
			continue
		}
		if p.Extra == nil {
			p.Extra = map[string]any{}
		}
		p.Extra[k] = v
	}
}

// validKey checks a key that names a field of its own (profile keys,
// consents, attributes).
func validKey(w walker, k string) bool {
	if k == "" || utf8.RuneCountInString(k) > maxProfileKey || hasControl(k, false) {
		*w.errs = append(*w.errs, FieldError{Field: w.path, Message: fmt.Sprintf(
			"has an invalid key: keys must be 1 to %d characters long, without control characters", maxProfileKey)})
		return false
	}
	return true
}

func (c *EngageUpsert) decode(w walker) {
	c.Start.decode(w)
	if iw, ok := w.object("identifier", required); ok {
		c.Identifier.Type = iw.str("type", required, func(s string) string {
			if msg := oneOf(IdentifierEmail, IdentifierMobile, IdentifierAppAlias, IdentifierExternal, IdentifierID)(s); msg != "" {
				return msg + " (upper case)"
			}
			return ""
		})
		valueRule := text(maxText)
		switch c.Identifier.Type {
		case IdentifierEmail:
			valueRule = emailRule
		case IdentifierMobile:
			valueRule = mobileRule
		case IdentifierID:
			valueRule = digitsRule(19, "123456")
		}
		c.Identifier.Value = iw.str("value", required, valueRule)
	}
	c.EmailAddress = w.str("emailAddress", optional, emailRule)
	c.MobileNumber = w.str("mobileNumber", optional, mobileRule)
	if aw, ok := w.object("attributes", optional); ok {
		for k, v := range aw.m {
			if !validKey(aw, k) || v == nil {
				continue
			}
			s, isStr := v.(string)
			if !isStr {
				aw.fail(k, "must be a string")
				continue
			}
			if msg := prose(maxAttr)(s); msg != "" {
				aw.fail(k, msg)
				continue
			}
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[k] = s
		}
	}
}

func (c *CloudSuiteActivate) decode(w walker) {
	c.Start.decode(w)
	c.UserKey = w.str("userKey", required, uuidRule)
	c.CustomerKey = w.str("customerKey", required, pathSegmentRule)
	if cw, ok := w.object("customer", optional); ok {
		raw, err := json.Marshal(cw.m)
		if err != nil {
			w.fail("customer", "cannot be encoded: "+err.Error())
			return
		}
		c.Customer = raw
	}
}

func (c *OTPSubmit) decode(w walker) {
	c.Steer.decode(w)
	c.Code = secret.New(w.str("code", required, func(s string) string {
		if !isDigits(s) || len(s) < 4 || len(s) > 8 {
			return "must be 4 to 8 digits"
		}
		return ""
	}))
}

func (c *Cancel) decode(w walker) {
	c.Steer.decode(w)
	c.Reason = w.str("reason", optional, prose(maxReason))
}
