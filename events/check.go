package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file holds the field rules of DecodeCommand and the walker that
// applies them to a parsed body, collecting every error.

const (
	maxText   = 256 // default limit of a free-text field, in characters
	maxEmail  = 254
	maxReason = 512
	maxAttr   = 4096
)

// need says whether a field is required.
type need bool

const (
	required need = true
	optional need = false
)

// rule checks a non-empty string and returns an error message, or "".
type rule func(string) string

// text allows up to n characters and no control characters.
func text(n int) rule {
	return func(s string) string {
		if c := utf8.RuneCountInString(s); c > n {
			return fmt.Sprintf("must be at most %d characters long, not %d", n, c)
		}
		if hasControl(s, false) {
			return "must not contain control characters"
		}
		return ""
	}
}

// prose is text that may also hold tabs and line breaks.
func prose(n int) rule {
	return func(s string) string {
		if c := utf8.RuneCountInString(s); c > n {
			return fmt.Sprintf("must be at most %d characters long, not %d", n, c)
		}
		if hasControl(s, true) {
			return "must not contain control characters other than tabs and line breaks"
		}
		return ""
	}
}

func hasControl(s string, allowLines bool) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			if allowLines && (r == '\t' || r == '\n' || r == '\r') {
				continue
			}
			return true
		}
	}
	return false
}

func registrationIDRule(s string) string {
	if len(s) > 128 {
		return fmt.Sprintf("must be at most 128 characters long, not %d", utf8.RuneCountInString(s))
	}
	for _, r := range s {
		if !isIDChar(r) {
			return fmt.Sprintf("must hold only A-Z a-z 0-9 . _ : - (not %q)", r)
		}
	}
	return ""
}

func isIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-'
}

func emailRule(s string) string {
	if len(s) > maxEmail || !isEmail(s) {
		return "must be an e-mail address such as jane@example.com"
	}
	return ""
}

// isEmail checks the WHATWG (HTML) shape of an e-mail address and requires a
// dot in the domain: local@label.label, ASCII only.
func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	for _, c := range []byte(s[:at]) {
		if !(isAlnum(c) || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0) {
			return false
		}
	}
	labels := strings.Split(s[at+1:], ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isE164 checks +, a non-zero digit, then 6 to 14 more digits.
func isE164(s string) bool {
	return len(s) >= 8 && len(s) <= 16 && s[0] == '+' && s[1] != '0' && isDigits(s[1:])
}

func mobileRule(s string) string {
	if !isE164(s) {
		return "must be a mobile number in E.164 form such as +33612345678"
	}
	return ""
}

func dateRule(s string) string {
	if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != 10 {
		return "must be a date written YYYY-MM-DD"
	}
	return ""
}

func digitsRule(max int, example string) rule {
	return func(s string) string {
		if !isDigits(s) || len(s) > max {
			return fmt.Sprintf("must be a string of 1 to %d digits such as %q", max, example)
		}
		return ""
	}
}

func oneOf(values ...string) rule {
	return func(s string) string {
		for _, v := range values {
			if s == v {
				return ""
			}
		}
		return "must be one of " + strings.Join(values, ", ")
	}
}

func uuidRule(s string) string {
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return "must be a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
	}
	return ""
}

func pathSegmentRule(s string) string {
	if len(s) > 128 {
		return "must be at most 128 characters long"
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '/' || r == '?' || r == '#' || r == '%' {
			return "must not contain whitespace, control characters, '/', '?', '#' or '%'"
		}
	}
	return ""
}

// iri splits a Resamania IRI /{clientToken}/{resource…}/{id}; it accepts a
// clientToken of A-Z a-z 0-9 . _ ~ - (as the Resamania client does), one or
// more resource segments of a-z and _, and a numeric id.
func iri(s string) (clientToken, resource string, ok bool) {
	parts := strings.Split(s, "/")
	if len(parts) < 4 || parts[0] != "" || len(s) > maxText {
		return "", "", false
	}
	clientToken, id := parts[1], parts[len(parts)-1]
	if clientToken == "" || !isDigits(id) {
		return "", "", false
	}
	for _, c := range []byte(clientToken) {
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' && c != '~' {
			return "", "", false
		}
	}
	segs := parts[2 : len(parts)-1]
	for _, seg := range segs {
		if seg == "" {
			return "", "", false
		}
		for _, c := range []byte(seg) {
			if !(c >= 'a' && c <= 'z' || c == '_') {
				return "", "", false
			}
		}
	}
	return clientToken, strings.Join(segs, "/"), true
}

// checkIRI accepts an IRI of the resource ("clubs", "contacts"), or of any
// resource when resource is ""; example is shown in the error message.
func checkIRI(s, resource, example string) string {
	_, res, ok := iri(s)
	if !ok || (resource != "" && res != resource) {
		return "must be an IRI such as " + example
	}
	return ""
}

func clubIRI(s string) string    { return checkIRI(s, "clubs", "/demoapi/clubs/123") }
func contactIRI(s string) string { return checkIRI(s, "contacts", "/demoapi/contacts/123") }

// nodeIRI accepts any resource name: the vendor's documents do not show
// what a network node's IRI looks like.
func nodeIRI(s string) string    { return checkIRI(s, "", "/demoapi/network_nodes/123") }
func sourceIRI(s string) string  { return checkIRI(s, "", "/demoapi/sources/123") }
func saleIDRule(s string) string { return digitsRule(20, "33")(s) }

// walker applies rules to one object of a parsed body; errors go to the
// shared list.
type walker struct {
	errs *[]FieldError
	path string
	m    map[string]any
}

func (w walker) field(key string) string { return joinPath(w.path, key) }

func (w walker) fail(key, msg string) {
	*w.errs = append(*w.errs, FieldError{Field: w.field(key), Message: msg})
}

// get returns a field's value; null counts as absent.
func (w walker) get(key string) (any, bool) {
	v, ok := w.m[key]
	return v, ok && v != nil
}

// str reads a string field and applies rules. An absent (or null, or "")
// field is an error when required and gives "" otherwise.
func (w walker) str(key string, n need, rules ...rule) string {
	v, ok := w.get(key)
	if !ok {
		if n == required {
			w.fail(key, "is required")
		}
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		w.fail(key, "must be a string")
		return ""
	}
	if s == "" {
		if n == required {
			w.fail(key, "must not be empty")
		}
		return ""
	}
	for _, r := range rules {
		if msg := r(s); msg != "" {
			w.fail(key, msg)
			return ""
		}
	}
	return s
}

// object reads an object field; ok is false when it is absent or invalid.
func (w walker) object(key string, n need) (walker, bool) {
	v, present := w.get(key)
	if !present {
		if n == required {
			w.fail(key, "is required")
		}
		return walker{}, false
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		w.fail(key, "must be an object")
		return walker{}, false
	}
	return walker{errs: w.errs, path: w.field(key), m: m}, true
}

// integer reads a field that must be a JSON number holding an integer.
func (w walker) integer(key string, n need) (int64, bool) {
	v, ok := w.get(key)
	if !ok {
		if n == required {
			w.fail(key, "is required")
		}
		return 0, false
	}
	num, isNum := v.(json.Number)
	if !isNum {
		w.fail(key, "must be a number")
		return 0, false
	}
	i, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		w.fail(key, "must be an integer")
		return 0, false
	}
	return i, true
}

// idNumber reads an id given as a JSON number or a string of digits and
// returns it as a string of digits.
func (w walker) idNumber(key string, n need) string {
	v, ok := w.get(key)
	if !ok {
		if n == required {
			w.fail(key, "is required")
		}
		return ""
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	}
	if !isDigits(s) || len(s) > 18 {
		w.fail(key, "must be a non-negative integer of at most 18 digits, as a number or a string of digits")
		return ""
	}
	return s
}

// registrationID reads the registrationId every command has.
func (w walker) registrationID() string {
	return w.str("registrationId", required, registrationIDRule)
}
