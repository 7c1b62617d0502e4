package cloudsuite

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/registrar-dev/registrar/vendors"
)

// Vendor is the Vendor of every *vendors.Error this package returns.
const Vendor = "cloudsuite"

// Codes of the errors the client returns, as vendors.Error.Code. The API
// (Django REST Framework) names no code in its error bodies: the code is
// derived from the status, the way DRF names its exceptions. The token
// endpoint (Keycloak) names one: its "error" value is the Code.
const (
	CodeInvalid          = "invalid"               // 400: a validation error; Fields names the fields
	CodeNotAuthenticated = "not_authenticated"     // 401 (after one re-authentication)
	CodePermissionDenied = "permission_denied"     // 403
	CodeNotFound         = "not_found"             // 404
	CodeMethodNotAllowed = "method_not_allowed"    // 405
	CodeThrottled        = "throttled"             // 429 (RateLimited)
	CodeTimeout          = vendors.CodeTimeout     // 408 (Transient)
	CodeServerError      = vendors.CodeServerError // 5xx (Transient)

	// OAuth2 "error" values of the token endpoint.
	CodeInvalidClient        = "invalid_client"         // unknown client or wrong secret
	CodeUnauthorizedClient   = "unauthorized_client"    // the client may not use client credentials
	CodeInvalidRequest       = "invalid_request"        // a malformed token request
	CodeInvalidGrant         = "invalid_grant"          // the grant was refused
	CodeInvalidScope         = "invalid_scope"          // scope=openid refused
	CodeUnsupportedGrantType = "unsupported_grant_type" // client credentials not enabled

	// Errors of the client itself.
	CodeInvalidAnswer   = "invalid_answer"   // a success the client cannot read (Transient)
	CodeInvalidArgument = "invalid_argument" // the client refused to send the call (Permanent)
	CodeForeignNext     = "foreign_next"     // a "next" page on another scheme or host (Permanent)
	CodePagingLoop      = "paging_loop"      // "next" pages that never end (Permanent)
)

// Bounds of what the client reads.
const (
	maxErrorBody   = 64 << 10 // an error reply is read up to this
	maxReplyBody   = 8 << 20  // a successful reply larger than this is refused
	maxMessageLen  = 300      // a vendor message is cut to this many bytes
	maxFieldErrors = 50       // field errors kept from one reply
	maxFieldDepth  = 4        // nesting of field errors followed
	maxCodeLen     = 64
)

// credentialsMessage is the Message of a refused client: it names what the
// operator must check, never a value.
const credentialsMessage = "the token endpoint refused the client credentials: check the tenant's cloudsuite clientId and clientSecret"

// oauthMessages are the Messages of the token endpoint's errors. Messages
// come from here, not from error_description: the client's credentials must
// never reach an error, whatever the endpoint echoes.
var oauthMessages = map[string]string{
	CodeInvalidClient:        credentialsMessage,
	CodeUnauthorizedClient:   "the client may not use the client credentials grant: check the tenant's cloudsuite clientId and the client's settings in CloudSuite",
	CodeInvalidRequest:       "the token request was refused as malformed",
	CodeInvalidGrant:         "the token endpoint refused the grant",
	CodeInvalidScope:         "the token endpoint refused scope openid",
	CodeUnsupportedGrantType: "the token endpoint does not accept the client credentials grant for this client",
}

// HasCode reports whether err is (or wraps) a CloudSuite error with that
// Code.
func HasCode(err error, code string) bool {
	var ve *vendors.Error
	return errors.As(err, &ve) && ve.Vendor == Vendor && ve.Code == code
}

// IsAlreadyExists reports whether err is a 400 refusing to create an object
// whose key is taken ({"key":["… with this key already exists."]}).
func IsAlreadyExists(err error) bool {
	var ve *vendors.Error
	if !errors.As(err, &ve) || ve.Vendor != Vendor || ve.Status != http.StatusBadRequest {
		return false
	}
	for _, f := range ve.Fields {
		if f.Field == "key" && strings.Contains(f.Message, "already exists") {
			return true
		}
	}
	return false
}

// StatusCode is the Code of a reply whose status is status: the DRF name
// of the status (400 "invalid", 401 "not_authenticated", 403
// "permission_denied", 404 "not_found", 405 "method_not_allowed", 429
// "throttled"), else vendors.StatusCode ("server_error" for a 5xx,
// "timeout" for 408, "http_<status>" otherwise).
func StatusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusUnauthorized:
		return CodeNotAuthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusTooManyRequests:
		return CodeThrottled
	}
	return vendors.StatusCode(status)
}

// errorBody is what an error reply says.
type errorBody struct {
	oauthError string               // the token endpoint's "error", if a code
	detail     string               // DRF's "detail", or a top-level list's messages
	message    string               // a gateway's {"message": "…"}, kept for non-400 replies
	fields     []vendors.FieldError // DRF's field errors, sorted by field
}

// parseErrorBody reads a DRF or OAuth2 error body; it never fails. Shapes:
//
//	{"detail": "Not found."}
//	{"field": ["This field is required."], "other": {"nested": ["…"]}}
//	["A non-field error."]
//	{"error": "invalid_client", "error_description": "…"}
func parseErrorBody(b []byte) errorBody {
	var e errorBody
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return e
	}
	switch b[0] {
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(b, &list) == nil {
			e.detail = firstMessage(list)
		}
		return e
	case '{':
	default:
		return e
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return e
	}
	if v, ok := obj["error"]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil && isCode(s) {
			e.oauthError = s
			return e
		}
	}
	if v, ok := obj["detail"]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			e.detail = cleanMessage(s)
			return e
		}
	}
	if v, ok := obj["message"]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			e.message = cleanMessage(s)
		}
	}
	collectFields(&e.fields, "", obj, 0)
	slices.SortStableFunc(e.fields, func(a, b vendors.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return e
}

// collectFields appends the field errors of a DRF error object: each key
// whose value is a list of messages (or one message), following nested
// objects ("address.zip") and lists of objects ("lines[1].qty").
func collectFields(out *[]vendors.FieldError, prefix string, obj map[string]json.RawMessage, depth int) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(*out) >= maxFieldErrors {
			return
		}
		name := cleanField(k)
		if prefix != "" {
			name = prefix + "." + name
		}
		collectValue(out, name, obj[k], depth)
	}
}

func collectValue(out *[]vendors.FieldError, name string, v json.RawMessage, depth int) {
	if depth > maxFieldDepth || len(*out) >= maxFieldErrors {
		return
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		*out = append(*out, vendors.FieldError{Field: name, Message: cleanMessage(s)})
		return
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		if msg := firstMessage(list); msg != "" {
			*out = append(*out, vendors.FieldError{Field: name, Message: msg})
			return
		}
		for i, item := range list {
			collectValue(out, name+"["+strconv.Itoa(i)+"]", item, depth+1)
		}
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) == nil {
		collectFields(out, name, obj, depth+1)
	}
}

// firstMessage returns the strings of list joined by a space, or "" if it
// holds none.
func firstMessage(list []json.RawMessage) string {
	var msgs []string
	for _, item := range list {
		var s string
		if json.Unmarshal(item, &s) == nil && strings.TrimSpace(s) != "" {
			msgs = append(msgs, s)
		}
	}
	return cleanMessage(strings.Join(msgs, " "))
}

// cleanMessage makes a vendor message fit for an error: printable, on one
// line, at most maxMessageLen bytes.
func cleanMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// cleanField is a field name fit for an error: printable, at most 64 bytes.
func cleanField(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// isCode reports whether s looks like an OAuth2 error code: [a-z0-9_],
// at most 64 characters.
func isCode(s string) bool {
	if s == "" || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// CheckResponse returns nil for a 2xx reply, leaving its body unread.
// Otherwise it reads the body (up to 64 KiB), puts what it read back into
// resp.Body (the caller closes it) and returns a *vendors.Error (Op empty:
// the client fills it in).
//
// Classification:
//   - Kind from the status (vendors.ClassifyStatus): 429 RateLimited with
//     RetryAfter from Retry-After, 408 and 5xx Transient, other statuses
//     Permanent;
//   - an OAuth2 body ({"error":"invalid_client",…}, the token endpoint):
//     Code is the "error" value, Message a fixed description of it (never
//     error_description); "temporarily_unavailable" and "server_error" are
//     Transient whatever the status;
//   - a DRF body: Code from the status (see StatusCode); Message the
//     "detail" ({"detail":"Not found."}) or, for the field errors of a 400
//     ({"email":["This field is required."]}), the fields and their
//     messages, with Fields sorted by field name;
//   - a {"message": "…"} body (gateways, injected faults): Code from the
//     status, Message the message;
//   - any other body (HTML, empty): Code from the status, Message the
//     status text.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return checkReply(resp.StatusCode, resp.Header, body, time.Now())
}

// checkReply classifies a reply whose body has been read (see
// CheckResponse).
func checkReply(status int, h http.Header, body []byte, now time.Time) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	eb := parseErrorBody(body)
	e := &vendors.Error{Vendor: Vendor, Status: status, Kind: vendors.ClassifyStatus(status), Code: StatusCode(status)}
	if h != nil {
		e.RetryAfter = vendors.ParseRetryAfter(h, now)
	}
	switch {
	case eb.oauthError != "":
		e.Code = eb.oauthError
		if eb.oauthError == "temporarily_unavailable" || eb.oauthError == "server_error" {
			if e.Kind != vendors.RateLimited {
				e.Kind = vendors.Transient
			}
		}
		e.Message = oauthMessages[eb.oauthError]
		if e.Message == "" {
			e.Message = "the token endpoint answered " + eb.oauthError
		}
	case eb.detail != "":
		e.Message = eb.detail
	case status == http.StatusBadRequest && len(eb.fields) > 0:
		e.Fields = eb.fields
		e.Message = fieldsMessage(eb.fields)
	case eb.message != "":
		e.Message = eb.message
	}
	if e.Message == "" {
		if e.Message = http.StatusText(status); e.Message == "" {
			e.Message = "HTTP " + strconv.Itoa(status)
		}
	}
	return e
}

// fieldsMessage sums up field errors: "email: Enter a valid email address.;
// key: …", cut short.
func fieldsMessage(fs []vendors.FieldError) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		if f.Message != "" {
			b.WriteString(": ")
			b.WriteString(f.Message)
		}
		if b.Len() > maxMessageLen {
			break
		}
	}
	return cleanMessage(b.String())
}
