package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/registrar-dev/registrar/secret"
)

// fakeTenants knows tenant "acme" with every vendor and "solo" with
// Resamania only.
type fakeTenants struct{}

func (fakeTenants) CheckTenant(tenant, vendor string) error {
	switch tenant {
	case "acme":
		return nil
	case "solo":
		if vendor == VendorResamania {
			return nil
		}
		return fmt.Errorf("tenant %q has no %s account", tenant, vendor)
	}
	return fmt.Errorf("unknown tenant %q", tenant)
}

func example(t testing.TB, commandType string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", commandType+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCommandExamples(t *testing.T) {
	want := map[string]Command{
		CmdResamaniaRegister: &ResamaniaRegister{
			Start:               Start{ID: "web:2026-11-25:0001", Tenant: "acme"},
			ClubID:              "/demoapi/clubs/123",
			NetworkNodeID:       "/demoapi/network_nodes/7",
			SaleID:              "33",
			OnProspectElsewhere: ProspectTransfer,
			Contact: NewContact{
				Email: "john+test@example.com", GivenName: "John", FamilyName: "Doe", BirthDate: "1990-01-01",
				Gender: "male", Mobile: "+33612345678", SourceID: "/demoapi/sources/5",
				Address: &Address{StreetAddress: "1 The Street", PostalCode: "06000", AddressLocality: "NICE", AddressCountry: "France"},
			},
		},
		CmdResamaniaTransfer: &ResamaniaTransfer{
			Start:                    Start{ID: "web:2026-11-25:0002", Tenant: "acme"},
			ContactID:                "/demoapi/contacts/10296819",
			SourceClubID:             "/demoapi/clubs/1",
			DestinationClubID:        "/demoapi/clubs/2",
			DestinationNetworkNodeID: "/demoapi/network_nodes/2",
		},
		CmdResamaniaMigrate: &ResamaniaMigrate{
			Start:              Start{ID: "web:2026-11-25:0003", Tenant: "acme"},
			SourceContactID:    "/demoapi/contacts/10296819",
			SourceContactEmail: "justine.doe@example.com",
			TargetContactID:    "/demoapi/contacts/2974221",
			TargetClubID:       "/demoapi/clubs/123",
			SaleID:             "33",
		},
		CmdMartaSignup: &MartaSignup{
			Start:      Start{ID: "app:marta:0004", Tenant: "acme"},
			CampaignID: "1234",
			CategoryID: "56",
			DeviceType: DeviceBrowser,
			Username:   "jane.doe@example.com",
			Password:   secret.New("S3cret-passw0rd!"),
			Profile: MartaProfile{
				Name: "Jane", Surname: "Doe", Gender: "F", Birthdate: "1992-04-22",
				Consents: map[string]bool{"usedforpromotions": true, "usedforstatistics": false, "usedbyothers": false},
				Extra:    map[string]any{"mobilecontactdata": "+393471234567", "city": "Milano"},
			},
		},
		CmdEngageUpsert: &EngageUpsert{
			Start:        Start{ID: "crm:engage:0005", Tenant: "acme"},
			Identifier:   EngageIdentifier{Type: IdentifierEmail, Value: "jane.doe@example.com"},
			EmailAddress: "jane.doe@example.com",
			MobileNumber: "+393471234567",
			Attributes:   map[string]string{"FirstName": "Jane", "LastName": "Doe", "user.ISOCountryCode": "IT"},
		},
		CmdCloudSuiteActivate: &CloudSuiteActivate{
			Start:       Start{ID: "cloudsuite:SOMEORIGIN:0f8fad5b-d9cb-469f-a165-70867728950e", Tenant: "acme"},
			UserKey:     "0f8fad5b-d9cb-469f-a165-70867728950e",
			CustomerKey: "CUST-1001",
			Customer:    json.RawMessage(`{"city":"Amsterdam","country":"NL","house_number":"1","name":"Example BV","street1":"Keizersgracht","vat":"NL123456789B01","zip":"1015 CJ"}`),
		},
		CmdOTPSubmit: &OTPSubmit{Steer: Steer{ID: "web:2026-11-25:0002"}, Code: secret.New("123456")},
		CmdOTPResend: &OTPResend{Steer: Steer{ID: "web:2026-11-25:0002"}},
		CmdCancel:    &Cancel{Steer: Steer{ID: "web:2026-11-25:0002"}, Reason: "the person changed their mind"},
	}
	for _, ct := range CommandTypes() {
		t.Run(ct, func(t *testing.T) {
			cmd, err := DecodeCommand(CommandSubject(ct), example(t, ct), fakeTenants{})
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if cmd.CommandType() != ct {
				t.Errorf("CommandType = %q, want %q", cmd.CommandType(), ct)
			}
			if !reflect.DeepEqual(cmd, want[ct]) {
				t.Errorf("decoded\n%#v\nwant\n%#v", cmd, want[ct])
			}
			steering := ct == CmdOTPSubmit || ct == CmdOTPResend || ct == CmdCancel
			if steering != (cmd.TenantName() == "" && cmd.Vendor() == "") {
				t.Errorf("TenantName %q, Vendor %q for a steering=%v command", cmd.TenantName(), cmd.Vendor(), steering)
			}
			if !steering && !strings.HasPrefix(ct, cmd.Vendor()+".") {
				t.Errorf("Vendor = %q for %s", cmd.Vendor(), ct)
			}
		})
	}
}

// del removes a field in patch.
type del struct{}

// patched returns the example of commandType with changes applied: keys are
// dotted paths, values replace (or, del, remove) what is there.
func patched(t *testing.T, commandType string, changes map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(example(t, commandType), &m); err != nil {
		t.Fatal(err)
	}
	for path, v := range changes {
		keys := strings.Split(path, ".")
		obj := m
		for _, k := range keys[:len(keys)-1] {
			next, ok := obj[k].(map[string]any)
			if !ok {
				t.Fatalf("patch %s: %s is not an object", path, k)
			}
			obj = next
		}
		last := keys[len(keys)-1]
		if _, isDel := v.(del); isDel {
			delete(obj, last)
		} else {
			obj[last] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCommandInvalid(t *testing.T) {
	deep := `{"registrationId":"r1","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	cases := []struct {
		name    string
		subject string         // default: CommandSubject(command)
		command string         // the example to start from
		changes map[string]any // applied to the example
		body    string         // used instead of the example when set
		want    []string       // fields in error, sorted
		msg     string         // a substring of the first error's message
	}{
		{name: "unknown subject", subject: "registration.cmd.resamania.delete", command: CmdOTPResend,
			want: []string{"subject"}, msg: "not a command subject"},
		{name: "event subject", subject: "registration.evt.completed", command: CmdOTPResend, want: []string{"subject"}},
		{name: "body too big", command: CmdCancel, changes: map[string]any{"reason": strings.Repeat("x", MaxBodySize)},
			want: []string{"body"}, msg: "more than the limit of 65536"},
		{name: "not UTF-8", command: CmdCancel, body: "{\"registrationId\":\"r1\",\"reason\":\"\xff\"}",
			want: []string{"body"}, msg: "not valid UTF-8 (byte offset 33)"},
		{name: "empty body", command: CmdCancel, body: "", want: []string{"body"}, msg: "is empty"},
		{name: "array body", command: CmdCancel, body: `[{"registrationId":"r1"}]`, want: []string{"body"}, msg: "must be a JSON object"},
		{name: "string body", command: CmdCancel, body: `"r1"`, want: []string{"body"}, msg: "must be a JSON object"},
		{name: "syntax error", command: CmdCancel, body: `{"registrationId":"r1",}`, want: []string{"body"}, msg: "byte offset"},
		{name: "truncated", command: CmdCancel, body: `{"registrationId":"r1"`, want: []string{"body"}, msg: "ends before"},
		{name: "trailing data", command: CmdCancel, body: `{"registrationId":"r1"} {}`, want: []string{"body"},
			msg: "data after the JSON object (byte offset 24)"},
		{name: "too deep", command: CmdCancel, body: deep, want: []string{"body"}, msg: "deeper than 32"},
		{name: "duplicate key", command: CmdCancel, body: `{"registrationId":"r1","registrationId":"r2"}`,
			want: []string{"registrationId"}, msg: "more than once"},
		{name: "duplicate nested key", command: CmdResamaniaRegister,
			body: `{"registrationId":"r1","tenant":"acme","clubId":"/demoapi/clubs/1","networkNodeId":"/demoapi/network_nodes/1",` +
				`"contact":{"email":"a@example.com","email":"b@example.com","givenName":"A","familyName":"B","birthDate":"1990-01-01"}}`,
			want: []string{"contact.email"}, msg: "more than once"},
		{name: "registrationId missing", command: CmdOTPResend, changes: map[string]any{"registrationId": del{}},
			want: []string{"registrationId"}, msg: "is required"},
		{name: "registrationId bad characters", command: CmdOTPResend, changes: map[string]any{"registrationId": "web/1 2"},
			want: []string{"registrationId"}, msg: "A-Z a-z 0-9 . _ : -"},
		{name: "registrationId too long", command: CmdOTPResend, changes: map[string]any{"registrationId": strings.Repeat("a", 129)},
			want: []string{"registrationId"}, msg: "at most 128"},
		{name: "registrationId a number", command: CmdOTPResend, changes: map[string]any{"registrationId": 42},
			want: []string{"registrationId"}, msg: "must be a string"},
		{name: "tenant missing", command: CmdResamaniaTransfer, changes: map[string]any{"tenant": del{}},
			want: []string{"tenant"}, msg: "is required"},
		{name: "unknown tenant", command: CmdResamaniaRegister, changes: map[string]any{"tenant": "globex"},
			want: []string{"tenant"}, msg: `unknown tenant "globex"`},
		{name: "tenant without the vendor", command: CmdMartaSignup, changes: map[string]any{"tenant": "solo"},
			want: []string{"tenant"}, msg: `tenant "solo" has no marta account`},
		{name: "register bare club id", command: CmdResamaniaRegister, changes: map[string]any{"clubId": "123"},
			want: []string{"clubId"}, msg: "must be an IRI such as /demoapi/clubs/123"},
		{name: "register club IRI of another resource", command: CmdResamaniaRegister, changes: map[string]any{"clubId": "/demoapi/contacts/1"},
			want: []string{"clubId"}},
		{name: "register bad network node and sale", command: CmdResamaniaRegister,
			changes: map[string]any{"networkNodeId": "/demoapi/network_nodes/x", "saleId": 33},
			want:    []string{"networkNodeId", "saleId"}},
		{name: "register sale id not digits", command: CmdResamaniaRegister, changes: map[string]any{"saleId": "/demoapi/sales/33"},
			want: []string{"saleId"}, msg: `such as "33"`},
		{name: "register bad onProspectElsewhere", command: CmdResamaniaRegister, changes: map[string]any{"onProspectElsewhere": "ignore"},
			want: []string{"onProspectElsewhere"}, msg: "transfer, migrate, reject"},
		{name: "register contact missing", command: CmdResamaniaRegister, changes: map[string]any{"contact": del{}},
			want: []string{"contact"}, msg: "is required"},
		{name: "register contact not an object", command: CmdResamaniaRegister, changes: map[string]any{"contact": "john@example.com"},
			want: []string{"contact"}, msg: "must be an object"},
		{name: "register several contact errors", command: CmdResamaniaRegister,
			changes: map[string]any{"contact.email": "john.example.com", "contact.givenName": "", "contact.familyName": del{},
				"contact.birthDate": "1990-02-30", "contact.mobile": "0612345678", "contact.address": []any{}},
			want: []string{"contact.address", "contact.birthDate", "contact.email", "contact.familyName", "contact.givenName", "contact.mobile"}},
		{name: "register birthDate a number", command: CmdResamaniaRegister, changes: map[string]any{"contact.birthDate": 19900101},
			want: []string{"contact.birthDate"}, msg: "must be a string"},
		{name: "register mixed client tokens", command: CmdResamaniaRegister, changes: map[string]any{"networkNodeId": "/other/network_nodes/7"},
			want: []string{"networkNodeId"}, msg: "clientToken of clubId"},
		{name: "register control characters", command: CmdResamaniaRegister, changes: map[string]any{"contact.givenName": "Jo\x00hn"},
			want: []string{"contact.givenName"}, msg: "control characters"},
		{name: "transfer to the same club", command: CmdResamaniaTransfer,
			changes: map[string]any{"destinationClubId": "/demoapi/clubs/1", "contactId": "/demoapi/clubs/9"},
			want:    []string{"contactId", "destinationClubId"}},
		{name: "transfer everything missing", command: CmdResamaniaTransfer, body: `{"registrationId":"r1","tenant":"acme"}`,
			want: []string{"contactId", "destinationClubId", "destinationNetworkNodeId", "sourceClubId"}},
		{name: "migrate same contact and bad email", command: CmdResamaniaMigrate,
			changes: map[string]any{"targetContactId": "/demoapi/contacts/10296819", "sourceContactEmail": "nobody"},
			want:    []string{"sourceContactEmail", "targetContactId"}},
		{name: "marta bad ids and device", command: CmdMartaSignup,
			changes: map[string]any{"campaignId": "abc", "categoryId": -1, "deviceType": 4},
			want:    []string{"campaignId", "categoryId", "deviceType"}},
		{name: "marta device type as a string", command: CmdMartaSignup, changes: map[string]any{"deviceType": "1"},
			want: []string{"deviceType"}, msg: "must be a number"},
		{name: "marta device type not an integer", command: CmdMartaSignup, changes: map[string]any{"deviceType": 1.5},
			want: []string{"deviceType"}, msg: "must be an integer"},
		{name: "marta bad username and card", command: CmdMartaSignup, changes: map[string]any{"username": "jane", "card": "12 34"},
			want: []string{"card", "username"}},
		{name: "marta password missing", command: CmdMartaSignup, changes: map[string]any{"password": del{}},
			want: []string{"password"}, msg: "is required"},
		{name: "marta password too long", command: CmdMartaSignup, changes: map[string]any{"password": strings.Repeat("p", 129)},
			want: []string{"password"}, msg: "at most 128"},
		{name: "marta bad profile", command: CmdMartaSignup,
			changes: map[string]any{"profile.gender": "X", "profile.birthdate": "22/04/1992",
				"profile.consents.usedbyothers": "yes", "profile.address": map[string]any{"city": "Milano"}},
			want: []string{"profile.address", "profile.birthdate", "profile.consents.usedbyothers", "profile.gender"}},
		{name: "marta profile missing", command: CmdMartaSignup, changes: map[string]any{"profile": del{}},
			want: []string{"profile"}, msg: "is required"},
		{name: "engage lower-case identifier type", command: CmdEngageUpsert, changes: map[string]any{"identifier.type": "email"},
			want: []string{"identifier.type"}, msg: "must be one of EMAIL, MOBILE, APP_ALIAS, EXTERNAL, ID"},
		{name: "engage identifier value not an email", command: CmdEngageUpsert, changes: map[string]any{"identifier.value": "+393471234567"},
			want: []string{"identifier.value"}, msg: "e-mail address"},
		{name: "engage bad mobile and attribute", command: CmdEngageUpsert,
			changes: map[string]any{"mobileNumber": "3471234567", "attributes.Age": 42},
			want:    []string{"attributes.Age", "mobileNumber"}},
		{name: "engage identifier missing", command: CmdEngageUpsert, changes: map[string]any{"identifier": del{}},
			want: []string{"identifier"}},
		{name: "cloudsuite bad keys and customer", command: CmdCloudSuiteActivate,
			changes: map[string]any{"userKey": "12345", "customerKey": "a/b", "customer": []any{"x"}},
			want:    []string{"customer", "customerKey", "userKey"}},
		{name: "otp code with letters", command: CmdOTPSubmit, changes: map[string]any{"code": "12ab"},
			want: []string{"code"}, msg: "4 to 8 digits"},
		{name: "otp code too short", command: CmdOTPSubmit, changes: map[string]any{"code": "123"}, want: []string{"code"}},
		{name: "otp code a number", command: CmdOTPSubmit, changes: map[string]any{"code": 123456}, want: []string{"code"}, msg: "must be a string"},
		{name: "otp code missing", command: CmdOTPSubmit, changes: map[string]any{"code": del{}}, want: []string{"code"}},
		{name: "cancel reason a number", command: CmdCancel, changes: map[string]any{"reason": 1}, want: []string{"reason"}},
		{name: "cancel reason too long", command: CmdCancel, changes: map[string]any{"reason": strings.Repeat("r", 513)},
			want: []string{"reason"}, msg: "at most 512"},
		{name: "unknown subject and bad id", subject: "registration.cmd.nope", command: CmdOTPResend,
			changes: map[string]any{"registrationId": ""}, want: []string{"registrationId", "subject"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subject := tc.subject
			if subject == "" {
				subject = CommandSubject(tc.command)
			}
			body := []byte(tc.body)
			if tc.body == "" && tc.name != "empty body" {
				body = patched(t, tc.command, tc.changes)
			}
			cmd, err := DecodeCommand(subject, body, fakeTenants{})
			if cmd != nil {
				t.Errorf("got a command with the error: %#v", cmd)
			}
			var ice *InvalidCommandError
			if !errors.As(err, &ice) {
				t.Fatalf("error = %v, want an *InvalidCommandError", err)
			}
			var fields []string
			for _, fe := range ice.Errors {
				fields = append(fields, fe.Field)
			}
			if !slices.Equal(fields, tc.want) {
				t.Errorf("fields = %q, want %q\n%v", fields, tc.want, err)
			}
			if tc.msg != "" && len(ice.Errors) > 0 && !strings.Contains(ice.Errors[0].Message, tc.msg) {
				t.Errorf("message %q does not contain %q", ice.Errors[0].Message, tc.msg)
			}
			wantType := strings.TrimPrefix(subject, CommandSubjectPrefix)
			if slices.Contains(fields, "subject") {
				wantType = ""
			}
			if ice.CommandType != wantType {
				t.Errorf("CommandType = %q, want %q", ice.CommandType, wantType)
			}
			if strings.Contains(err.Error(), "S3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestInvalidCommandErrorRegistrationID(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	cases := []struct {
		name string
		body string
		want string
	}{
		{name: "valid id, other field invalid", body: `{"registrationId":"r-1","code":"x"}`, want: "r-1"},
		{name: "invalid id as given", body: `{"registrationId":"bad id/1","code":"1234"}`, want: "bad id/1"},
		{name: "long id cut on a character boundary", body: `{"registrationId":"` + long + `"}`, want: strings.Repeat("é", 64)},
		{name: "id read before a syntax error", body: `{"registrationId":"r-2","code":}`, want: "r-2"},
		{name: "id not a string", body: `{"registrationId":7}`, want: ""},
		{name: "no id", body: `{"code":"1234"}`, want: ""},
		{name: "not JSON", body: `registrationId=r-3`, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCommand(CommandSubject(CmdOTPSubmit), []byte(tc.body), nil)
			var ice *InvalidCommandError
			if !errors.As(err, &ice) {
				t.Fatalf("error = %v", err)
			}
			if ice.RegistrationID != tc.want {
				t.Errorf("RegistrationID = %q, want %q", ice.RegistrationID, tc.want)
			}
		})
	}
}

func TestInvalidCommandErrorMessage(t *testing.T) {
	_, err := DecodeCommand(CommandSubject(CmdResamaniaTransfer),
		[]byte(`{"registrationId":"r-1","tenant":"acme","contactId":"1","sourceClubId":"/demoapi/clubs/1","destinationClubId":"/demoapi/clubs/2","destinationNetworkNodeId":"/demoapi/network_nodes/2"}`), nil)
	want := `invalid resamania.transfer command "r-1": contactId: must be an IRI such as /demoapi/contacts/123`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestDecodeCommandLenience(t *testing.T) {
	cases := []struct {
		name    string
		command string
		changes map[string]any
		check   func(t *testing.T, c Command)
	}{
		{name: "unknown fields are ignored", command: CmdResamaniaRegister,
			changes: map[string]any{"newField": map[string]any{"a": []any{1, 2}}, "contact.nickname": "Johnny"},
			check:   func(t *testing.T, c Command) {}},
		{name: "onProspectElsewhere defaults to transfer", command: CmdResamaniaRegister,
			changes: map[string]any{"onProspectElsewhere": del{}},
			check: func(t *testing.T, c Command) {
				if got := c.(*ResamaniaRegister).OnProspectElsewhere; got != ProspectTransfer {
					t.Errorf("OnProspectElsewhere = %q", got)
				}
			}},
		{name: "null attribute is absent", command: CmdEngageUpsert, changes: map[string]any{"attributes.LastName": nil},
			check: func(t *testing.T, c Command) {
				if a := c.(*EngageUpsert).Attributes; len(a) != 2 || a["FirstName"] != "Jane" {
					t.Errorf("attributes = %v", a)
				}
			}},
		{name: "null and empty optional fields are absent", command: CmdResamaniaRegister,
			changes: map[string]any{"saleId": nil, "contact.mobile": "", "contact.address": map[string]any{"postalCode": ""}},
			check: func(t *testing.T, c Command) {
				r := c.(*ResamaniaRegister)
				if r.SaleID != "" || r.Contact.Mobile != "" || r.Contact.Address != nil {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "campaign id as a string, category id as a number", command: CmdMartaSignup,
			changes: map[string]any{"campaignId": "1234", "categoryId": 56},
			check: func(t *testing.T, c Command) {
				m := c.(*MartaSignup)
				if m.CampaignID != "1234" || m.CategoryID != "56" {
					t.Errorf("CampaignID %q, CategoryID %q", m.CampaignID, m.CategoryID)
				}
			}},
		{name: "mobile username", command: CmdMartaSignup, changes: map[string]any{"username": "+393471234567"},
			check: func(t *testing.T, c Command) {
				if !c.(*MartaSignup).UsernameIsMobile() {
					t.Error("UsernameIsMobile = false")
				}
			}},
		{name: "network node IRI of any resource", command: CmdResamaniaTransfer,
			changes: map[string]any{"destinationNetworkNodeId": "/demoapi/clubs/2"},
			check:   func(t *testing.T, c Command) {}},
		{name: "no tenant checker", command: CmdEngageUpsert, changes: map[string]any{"tenant": "anyone"},
			check: func(t *testing.T, c Command) {
				if c.TenantName() != "anyone" {
					t.Errorf("TenantName = %q", c.TenantName())
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tenants TenantChecker = fakeTenants{}
			if tc.name == "no tenant checker" {
				tenants = nil
			}
			c, err := DecodeCommand(CommandSubject(tc.command), patched(t, tc.command, tc.changes), tenants)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestCommandsMarshalWithoutSecrets(t *testing.T) {
	for ct, secretValue := range map[string]string{CmdMartaSignup: "S3cret-passw0rd!", CmdOTPSubmit: "123456"} {
		t.Run(ct, func(t *testing.T) {
			cmd, err := DecodeCommand(CommandSubject(ct), example(t, ct), nil)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range []string{string(js), fmt.Sprintf("%+v", cmd), fmt.Sprintf("%#v", cmd)} {
				if strings.Contains(out, secretValue) {
					t.Errorf("the secret shows: %s", out)
				}
			}
		})
	}
}

func TestMartaProfile(t *testing.T) {
	cmd, err := DecodeCommand(CommandSubject(CmdMartaSignup), example(t, CmdMartaSignup), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cmd.(*MartaSignup).Profile

	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back MartaProfile
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip\n%#v\nwant\n%#v", back, p)
	}
	var flat map[string]any
	if err := json.Unmarshal(js, &flat); err != nil {
		t.Fatal(err)
	}
	if flat["city"] != "Milano" || flat["name"] != "Jane" {
		t.Errorf("not flat: %s", js)
	}

	lookups := []struct {
		name  string
		found bool
		want  any
	}{
		{name: "name", found: true, want: "Jane"},
		{name: "usedforpromotions", found: true, want: true},
		{name: "usedForPromotions", found: true, want: true},
		{name: "City", found: true, want: "Milano"},
		{name: "fiscalcode", found: false},
	}
	for _, l := range lookups {
		t.Run("lookup "+l.name, func(t *testing.T) {
			v, ok := p.Lookup(l.name)
			if ok != l.found || (ok && v != l.want) {
				t.Errorf("Lookup(%q) = %v, %v", l.name, v, ok)
			}
		})
	}
	if got := p.Missing([]string{"surname", "fiscalcode", "UsedByOthers", "address"}); !slices.Equal(got, []string{"address", "fiscalcode"}) {
		t.Errorf("Missing = %q", got)
	}
}

func TestUnmarshalCommandMatchesDecode(t *testing.T) {
	for _, ct := range CommandTypes() {
		t.Run(ct, func(t *testing.T) {
			body := example(t, ct)
			want, err := DecodeCommand(CommandSubject(ct), body, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := newCommand(ct)
			if err := json.Unmarshal(body, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(Command(got), want) {
				t.Errorf("json.Unmarshal gives\n%#v\nDecodeCommand gives\n%#v", got, want)
			}

			// Marshal and read back: the same command, but for its secret.
			if ct == CmdOTPSubmit {
				return // "[redacted]" is not a code
			}
			js, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			back := newCommand(ct)
			if err := json.Unmarshal(js, back); err != nil {
				t.Fatalf("read back %s: %v", js, err)
			}
			if c, ok := want.(*MartaSignup); ok {
				c.Password = secret.New(secret.Marker)
			}
			if !reflect.DeepEqual(Command(back), want) {
				t.Errorf("round trip\n%#v\nwant\n%#v", back, want)
			}
		})
	}

	var r ResamaniaRegister
	if err := json.Unmarshal(patched(t, CmdResamaniaRegister, map[string]any{"onProspectElsewhere": del{}}), &r); err != nil ||
		r.OnProspectElsewhere != ProspectTransfer {
		t.Errorf("default not applied: %q, %v", r.OnProspectElsewhere, err)
	}
	var m MartaSignup
	err := json.Unmarshal([]byte(`{"registrationId":"r1","deviceType":"1"}`), &m)
	var ice *InvalidCommandError
	if !errors.As(err, &ice) || ice.CommandType != CmdMartaSignup || ice.RegistrationID != "r1" {
		t.Errorf("error = %v", err)
	}
}
