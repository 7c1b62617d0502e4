package events

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkDecodeCommand decodes and validates each example command: the
// intake's first step for every message.
func BenchmarkDecodeCommand(b *testing.B) {
	for _, typ := range CommandTypes() {
		body := example(b, typ)
		subject := CommandSubject(typ)
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := DecodeCommand(subject, body, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeEvent stamps and encodes a completed event, as every
// flow's last commit does.
func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		e := &Completed{Result: ResamaniaResult{ContactID: "/demoapi/contacts/2974001", ContactNumber: "C2974001", ClubID: "/demoapi/clubs/1357", Created: true}}
		Stamp(e, "4339aec4-fc95-572d-b4f2-1548f2079ff4", "reg-1", CmdResamaniaRegister, at)
		if _, err := json.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
