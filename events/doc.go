// Package events is registrar's public contract with upstream systems: the
// commands upstream publishes on NATS (subjects registration.cmd.<type>) and
// the events the service emits (subjects registration.evt.<type>), as Go types
// with the JSON field names of CONTRACT.md.
//
// # Commands
//
// DecodeCommand turns the subject and body of a command message into one of
// the command types (ResamaniaRegister, MartaSignup, OTPSubmit, …) or into an
// *InvalidCommandError that lists every invalid field with its JSON path, ready
// for a Rejected event. Decoding is strict about what it reads:
//
//   - the body is one UTF-8 JSON object of at most MaxBodySize bytes, with no
//     data after it, no key given twice and no nesting deeper than MaxDepth;
//   - field names are matched exactly (case-sensitive), and each field must
//     have its JSON type: a number where a string is wanted is an error;
//   - a field that is null, and an optional string field that is "", count as
//     absent.
//
// json.Unmarshal into a command type applies the same rules (without the
// tenant check), so a command body stored at intake reads back the same.
//
// Fields the contract does not name are ignored, at every level, so upstream
// keeps working when a later version of the contract adds a field. Two
// objects are the exception and keep every key: MartaSignup's profile (its
// keys are the campaign's own data-field names, see MartaProfile) and
// CloudSuiteActivate's customer (passed on to the vendor as is).
//
// Secret fields (MartaSignup.Password, OTPSubmit.Code) are secret.String: they
// marshal as "[redacted]", so a decoded command marshalled back to JSON has
// lost its secret. Redact does the same for a raw body (dead letters, logs).
//
// # Events
//
// Every event type embeds Envelope (eventId, type, registrationId, flow,
// occurredAt) and marshals as one flat JSON object. Stamp fills the envelope
// and gives the subject to publish on; DecodeEvent and DecodeEnvelope read
// events back. No event type has a secret field.
package events

const (
	// CommandSubjectPrefix starts the subject of every command; the rest is
	// the command type (CmdResamaniaRegister, …).
	CommandSubjectPrefix = "registration.cmd."
	// EventSubjectPrefix starts the subject of every event; the rest is the
	// event type, the same string as the event's "type" field.
	EventSubjectPrefix = "registration.evt."
	// DeadLetterSubjectPrefix starts the subject of every dead letter.
	DeadLetterSubjectPrefix = "registration.dlq."
	// MaxBodySize is the largest command body DecodeCommand accepts, in bytes.
	MaxBodySize = 64 << 10
	// MaxDepth is how deeply objects and arrays may nest in a command body;
	// the body object itself is level 1.
	MaxDepth = 32
)

// Vendors, as returned by Command.Vendor and written in failed events.
const (
	VendorResamania  = "resamania"
	VendorMarta      = "marta"
	VendorEngage     = "engage"
	VendorCloudSuite = "cloudsuite"
)
