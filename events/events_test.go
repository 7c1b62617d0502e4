package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
)

// sampleEvents returns one filled-in event of every type.
func sampleEvents(t *testing.T) []Event {
	t.Helper()
	contact := ResamaniaContact{
		ID: "/demoapi/contacts/2974221", Number: "C2974221", Email: "john+test@example.com", GivenName: "John",
		FamilyName: "Doe", BirthDate: "1990-01-01", Gender: "male", State: "prospect", ClubID: "/demoapi/clubs/123",
		Mobile: "+33612345678", Address: &Address{StreetAddress: "1 The Street", PostalCode: "06000", AddressLocality: "NICE", AddressCountry: "France"},
	}
	return []Event{
		&ResamaniaContactFound{Contact: ResamaniaContact{ID: "/demoapi/contacts/10296819", Number: "ZM14314719",
			ClubID: "/demoapi/clubs/1", State: "old_client", PartialPhoneNumber: "******1615"}, Scope: ScopeNetwork},
		&ResamaniaContactCreated{Contact: contact},
		&ResamaniaContactMigrated{SourceContactID: "/demoapi/contacts/10296819", TargetContactID: contact.ID, TargetClubID: contact.ClubID},
		&ResamaniaSaleUpdated{SaleID: "33", ContactID: contact.ID},
		&ResamaniaProspectTransferred{ContactID: "/demoapi/contacts/1", NewContactID: "/demoapi/contacts/2",
			SourceClubID: "/demoapi/clubs/1", DestinationClubID: "/demoapi/clubs/2"},
		&MartaCustomerChecked{Branch: BranchHasCard, CustomerID: "9876"},
		&MartaAccountCreated{CustomerID: "9876", Username: "jane.doe@example.com", Card: "4000123", FidelyCode: "12345678901234"},
		&MartaCredentialsChanged{CustomerID: "9876", Username: "+393471234567", Card: "4000123"},
		&MartaProfileCompleted{CustomerID: "9876", Card: "4000123", Fields: []string{"birthdate", "name", "usedforpromotions"}},
		&EngageContactCreated{ContactID: 1234567890123, Identifier: EngageIdentifier{Type: IdentifierEmail, Value: "jane.doe@example.com"}},
		&EngageContactUpdated{ContactID: 42, Identifier: EngageIdentifier{Type: IdentifierID, Value: "42"}, Attributes: []string{"FirstName"}},
		&CloudSuiteUserRegistered{Origin: "SOMEORIGIN", UserKey: "0f8fad5b-d9cb-469f-a165-70867728950e", Email: "buyer@example.com",
			User: json.RawMessage(`{"key":"0f8fad5b-d9cb-469f-a165-70867728950e","user_profiles":[7]}`), Profile: json.RawMessage(`{"name":"Example BV"}`)},
		&CloudSuiteUserActivated{Origin: "SOMEORIGIN", UserKey: "0f8fad5b-d9cb-469f-a165-70867728950e", CustomerKey: "CUST-1001", CustomerCreated: true},
		&OTPRequested{Channel: ChannelSMS, MaskedDestination: "*********4567", ExpiresAt: time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC), AttemptsLeft: 3},
		&OTPRejected{AttemptsLeft: 0},
		&Completed{Result: ResamaniaResult{ContactID: contact.ID, ContactNumber: contact.Number, ClubID: contact.ClubID, Created: true, SaleID: "33"}},
		&Failed{Error: ErrorInfo{Code: CodeEmailTaken, Message: "the e-mail address is in use", Vendor: VendorResamania,
			VendorStatus: 400, VendorCode: "api.error.contact.email-already-used", Fields: []FieldError{{Field: "email", Message: "is in use"}}}},
		&Rejected{Command: CmdMartaSignup, Errors: []FieldError{{Field: "profile.gender", Message: "must be one of M, F, N"}}},
	}
}

func TestEventsCoverEveryType(t *testing.T) {
	var got []string
	for _, e := range sampleEvents(t) {
		got = append(got, e.EventType())
	}
	if !slices.Equal(got, EventTypes()) {
		t.Errorf("samples %q\nEventTypes %q", got, EventTypes())
	}
	for _, typ := range EventTypes() {
		e, ok := NewEvent(typ)
		if !ok || e.EventType() != typ {
			t.Errorf("NewEvent(%q) = %T, %v", typ, e, ok)
		}
	}
	if _, ok := NewEvent("resamania.contact_deleted"); ok {
		t.Error("NewEvent knows an unknown type")
	}
}

func TestEventShapeAndRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, e := range sampleEvents(t) {
		t.Run(e.EventType(), func(t *testing.T) {
			subject := Stamp(e, "0b6f3b5e-4d4c-4f0e-9a6e-3f2b1c0d9e8f", "web:1", "resamania.register", at)
			if subject != EventSubjectPrefix+e.EventType() || subject != Subject(e) {
				t.Errorf("subject = %q", subject)
			}
			body, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var flat map[string]any
			if err := json.Unmarshal(body, &flat); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"eventId", "type", "registrationId", "flow", "occurredAt"} {
				if _, ok := flat[k]; !ok {
					t.Errorf("no %q in %s", k, body)
				}
			}
			if _, nested := flat["Envelope"]; nested {
				t.Errorf("envelope nested: %s", body)
			}
			if flat["type"] != strings.TrimPrefix(subject, EventSubjectPrefix) {
				t.Errorf("type %v does not match subject %s", flat["type"], subject)
			}
			if flat["occurredAt"] != "2026-11-25T09:00:00.123456789Z" {
				t.Errorf("occurredAt = %v, want RFC 3339 in UTC", flat["occurredAt"])
			}

			back, err := DecodeEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Errorf("round trip\n%#v\nwant\n%#v", back, e)
			}
			env, err := DecodeEnvelope(body)
			if err != nil || env != *e.Meta() {
				t.Errorf("DecodeEnvelope = %+v, %v", env, err)
			}
		})
	}
}

// TestEventsHaveNoSecrets walks every event type: no secret.String, and no
// field named like a secret ("code" only as a failure code).
func TestEventsHaveNoSecrets(t *testing.T) {
	secretType := reflect.TypeFor[secret.String]()
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ == secretType {
			t.Errorf("%s is a secret.String", path)
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for f := range typ.Fields() {
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			lower := strings.ToLower(name)
			if strings.Contains(lower, "password") || strings.Contains(lower, "token") || strings.Contains(lower, "secret") ||
				(lower == "code" && typ != reflect.TypeFor[ErrorInfo]()) || strings.HasSuffix(lower, "verificationcode") {
				t.Errorf("%s.%s looks like a secret", path, name)
			}
			walk(path+"."+f.Name, f.Type)
		}
	}
	for _, typ := range EventTypes() {
		e, _ := NewEvent(typ)
		walk(typ, reflect.TypeOf(e))
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	cases := []struct {
		name string
		body string
		want string
	}{
		{name: "not JSON", body: `nope`, want: "invalid character"},
		{name: "no type", body: `{"eventId":"e1"}`, want: "missing type"},
		{name: "nothing", body: `{}`, want: "missing eventId, type"},
		{name: "bad time", body: `{"eventId":"e1","type":"completed","occurredAt":"yesterday"}`, want: "cannot parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
	_, err := DecodeEvent([]byte(`{"eventId":"e1","type":"resamania.contact_deleted"}`))
	if !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("DecodeEvent of an unknown type: %v", err)
	}
}

func TestCompletedResult(t *testing.T) {
	cases := []struct {
		name   string
		flow   string
		result any
	}{
		{name: "resamania", flow: CmdResamaniaMigrate,
			result: ResamaniaResult{ContactID: "/demoapi/contacts/1", ContactNumber: "C1", ClubID: "/demoapi/clubs/1", Migrated: true}},
		{name: "marta", flow: CmdMartaSignup, result: MartaResult{CustomerID: "9", Username: "jane.doe@example.com", Card: "4000123", Branch: BranchNew}},
		{name: "engage", flow: CmdEngageUpsert, result: EngageResult{ContactID: 42, Created: true}},
		{name: "cloudsuite", flow: CmdCloudSuiteActivate,
			result: CloudSuiteResult{Origin: "O", UserKey: "0f8fad5b-d9cb-469f-a165-70867728950e", CustomerKey: "C"}},
		{name: "unknown vendor keeps raw JSON", flow: "sap.order", result: json.RawMessage(`{"order":1}`)},
		{name: "no result", flow: CmdEngageUpsert, result: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Completed{Result: tc.result}
			Stamp(c, "e1", "r1", tc.flow, time.Unix(0, 0))
			body, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("round trip %#v\nwant %#v", back, c)
			}
		})
	}
	if _, err := DecodeEvent([]byte(`{"eventId":"e","type":"completed","flow":"marta.signup","result":{"card":7}}`)); err == nil {
		t.Error("a result of the wrong shape decoded")
	}
}

func TestNewRejected(t *testing.T) {
	_, err := DecodeCommand(CommandSubject(CmdOTPSubmit), []byte(`{"registrationId":"r 1","code":"12"}`), nil)
	var ice *InvalidCommandError
	if !errors.As(err, &ice) {
		t.Fatal(err)
	}
	r := NewRejected(ice)
	Stamp(r, "e1", ice.RegistrationID, CmdOTPSubmit, time.Now())
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `"registrationId":"r 1","flow":"otp.submit",` // registrationId as given
	if !strings.Contains(string(body), want) || !strings.Contains(string(body), `"command":"otp.submit","errors":[{"field":"code",`) {
		t.Errorf("rejected = %s", body)
	}
}

func TestFailureCodes(t *testing.T) {
	codes := FailureCodes()
	if len(codes) != 13 {
		t.Errorf("%d failure codes, the contract has 13", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c] || c != strings.ToLower(c) {
			t.Errorf("code %q repeated or not lower case", c)
		}
		seen[c] = true
	}
}

func TestMaskDestination(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{name: "email", in: "jane.doe@example.com", want: "j*******@example.com"},
		{name: "one-letter email", in: "j@example.com", want: "j@example.com"},
		{name: "mobile", in: "+393471234567", want: "*********4567"},
		{name: "short", in: "123", want: "***"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaskDestination(tc.in); got != tc.want {
				t.Errorf("MaskDestination(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
