// Package secret holds values that must never be shown: passwords, one-time
// codes, tokens and vendor credentials. A String prints, logs and marshals as
// a marker; only Reveal gives the value, at the one place that sends it.
package secret

import (
	"encoding/json"
	"log/slog"
)

// Marker replaces a secret wherever it would be shown.
const Marker = "[redacted]"

// String is a secret string. Its zero value is the empty secret.
//
// It unmarshals from JSON and YAML as a plain string, but marshals, formats
// and logs as Marker, so a struct holding one can be logged or emitted
// without leaking it.
type String struct{ v string }

// New wraps s.
func New(s string) String { return String{v: s} }

// Reveal returns the secret value. Call it only where the value is sent to
// the party that needs it.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer with the marker.
func (s String) String() string {
	if s.v == "" {
		return ""
	}
	return Marker
}

// GoString hides the value from %#v.
func (s String) GoString() string { return s.String() }

// LogValue implements slog.LogValuer with the marker.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the marker, never the value.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText writes the marker, never the value.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads a JSON string.
func (s *String) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &s.v) }

// UnmarshalText reads the raw text (used by YAML and flag decoding).
func (s *String) UnmarshalText(b []byte) error { s.v = string(b); return nil }
