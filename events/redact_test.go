package events

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cmd := CommandSubject(CmdMartaSignup)
	cases := []struct {
		name    string
		subject string
		body    string
		want    string
	}{
		{name: "password", subject: cmd,
			body: `{"registrationId":"r1", "password": "hunter2", "username":"jane@example.com"}`,
			want: `{"registrationId":"r1","password":"[redacted]","username":"jane@example.com"}`},
		{name: "otp code", subject: CommandSubject(CmdOTPSubmit), body: `{"registrationId":"r1","code":"123456"}`,
			want: `{"registrationId":"r1","code":"[redacted]"}`},
		{name: "nested, any case, any value type", subject: cmd,
			body: `{"a":[{"Password":{"x":1}},{"CODE":1234}],"b":"code"}`,
			want: `{"a":[{"Password":"[redacted]"},{"CODE":"[redacted]"}],"b":"code"}`},
		{name: "escaped key", subject: cmd, body: `{"pass\u0077ord":"hunter2"}`, want: `{"password":"[redacted]"}`},
		{name: "nothing secret is unchanged", subject: cmd, body: "{ \"registrationId\" : \"r1\" }", want: "{ \"registrationId\" : \"r1\" }"},
		{name: "event keeps failure codes", subject: EventSubjectPrefix + EvtFailed,
			body: `{"type":"failed","error":{"code":"email_taken"}}`, want: `{"type":"failed","error":{"code":"email_taken"}}`},
		{name: "invalid JSON is scanned", subject: cmd,
			body: `{"registrationId":"r1","password":"hun\"ter2","code": 1234,}`,
			want: `{"registrationId":"r1","password":"[redacted]","code": "[redacted]",}`},
		{name: "truncated string", subject: cmd, body: `{"password":"hunt`, want: `{"password":"[redacted]"`},
		{name: "not JSON, nothing secret", subject: cmd, body: "hello \xff", want: "hello \xff"},
		{name: "two values", subject: cmd, body: `{"code":"1"} {"code":"2"}`, want: `{"code":"[redacted]"} {"code":"[redacted]"}`},
		{name: "empty", subject: cmd, body: "", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Redact(tc.subject, []byte(tc.body))); got != tc.want {
				t.Errorf("Redact = %s\nwant     %s", got, tc.want)
			}
		})
	}
}

func TestRedactExamples(t *testing.T) {
	for _, ct := range CommandTypes() {
		t.Run(ct, func(t *testing.T) {
			body := example(t, ct)
			out := Redact(CommandSubject(ct), body)
			if !json.Valid(out) {
				t.Fatalf("not JSON: %s", out)
			}
			for _, s := range []string{"S3cret-passw0rd!", `"123456"`} {
				if strings.Contains(string(out), s) {
					t.Errorf("%s left in %s", s, out)
				}
			}
			if ct != CmdMartaSignup && ct != CmdOTPSubmit && string(out) != string(body) {
				t.Errorf("a body without secrets changed: %s", out)
			}
		})
	}
}
