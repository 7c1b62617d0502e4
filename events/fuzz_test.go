package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeCommand(f *testing.F) {
	for _, ct := range CommandTypes() {
		f.Add(CommandSubject(ct), example(f, ct))
	}
	f.Add(CommandSubject(CmdCancel), []byte(`{"registrationId":"r1","registrationId":"r2"}`))
	f.Add(CommandSubject(CmdMartaSignup), []byte(`{"profile":{"consents":{"":1},"x":[{}]},"campaignId":1e3}`))
	f.Add(CommandSubject(CmdOTPSubmit), []byte("{\"code\":\"\xff\"}"))
	f.Add("registration.cmd.", []byte(`[[[[`))
	f.Add(CommandSubject(CmdEngageUpsert), []byte(`{"registrationId":"r","tenant":"acme","identifier":{"type":"ID","value":"99999999999999999999"}} x`))

	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		cmd, err := DecodeCommand(subject, body, fakeTenants{})
		if err != nil {
			var ice *InvalidCommandError
			if !errors.As(err, &ice) {
				t.Fatalf("error %T is not an *InvalidCommandError: %v", err, err)
			}
			if cmd != nil || len(ice.Errors) == 0 || len(ice.RegistrationID) > 128 {
				t.Fatalf("cmd %v, error %+v", cmd, ice)
			}
			return
		}
		if cmd == nil {
			t.Fatal("no command and no error")
		}
		if CommandSubject(cmd.CommandType()) != subject {
			t.Fatalf("CommandType %q for subject %q", cmd.CommandType(), subject)
		}
		if msg := registrationIDRule(cmd.RegistrationID()); msg != "" || cmd.RegistrationID() == "" {
			t.Fatalf("accepted registrationId %q", cmd.RegistrationID())
		}
		js, err := json.Marshal(cmd)
		if err != nil {
			t.Fatalf("marshal a decoded command: %v", err)
		}
		if cmd.CommandType() == CmdOTPSubmit || cmd.CommandType() == CmdMartaSignup {
			return // their secret reads back as "[redacted]"
		}
		back := newCommand(cmd.CommandType())
		if err := json.Unmarshal(js, back); err != nil {
			t.Fatalf("read back %s: %v", js, err)
		}
		if !reflect.DeepEqual(Command(back), cmd) {
			t.Fatalf("round trip %#v, want %#v", back, cmd)
		}
	})
}

func FuzzRedact(f *testing.F) {
	f.Add(CommandSubject(CmdMartaSignup), []byte(`{"password":"hunter2"}`))
	f.Add(CommandSubject(CmdOTPSubmit), []byte(`{"code":"1234"`))
	f.Add(EventSubjectPrefix+EvtFailed, []byte(`{"error":{"code":"x"}}`))
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		out := Redact(subject, body)
		if json.Valid(body) && !json.Valid(out) {
			t.Fatalf("valid JSON %q became invalid: %q", body, out)
		}
		var m map[string]any
		if json.Unmarshal(out, &m) == nil {
			for k, v := range m {
				if strings.EqualFold(k, "password") && v != "[redacted]" {
					t.Fatalf("password left: %q", out)
				}
			}
		}
	})
}
