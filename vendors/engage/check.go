package engage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// Vendor is the Vendor of every *vendors.Error this package returns.
const Vendor = "engage"

// errorCode values of Engage's error body, as vendors.Error.Code.
const (
	CodeArchivedAttribute      = "ARCHIVED_ATTRIBUTE"
	CodeIncorrectStatus        = "INCORRECT_STATUS"
	CodeInvalidAttribute       = "INVALID_ATTRIBUTE"
	CodeInvalidAttributeValue  = "INVALID_ATTRIBUTE_VALUE"
	CodeInvalidParameter       = "INVALID_PARAMETER"
	CodeInvalidRequest         = "INVALID_REQUEST"
	CodeMaxAttributeCount      = "MAXIMUM_ATTRIBUTE_COUNT_EXCEEDED"
	CodeMaxSizeExceeded        = "MAXIMUM_SIZE_EXCEEDED"
	CodeMissingParameter       = "MISSING_PARAMETER"
	CodeNoSuchAttribute        = "NO_SUCH_ATTRIBUTE"
	CodeNoSuchObject           = "NO_SUCH_OBJECT"
	CodeObjectAlreadyExists    = "OBJECT_ALREADY_EXISTS"
	CodeOperationDisabled      = "OPERATION_DISABLED"
	CodePermissionDenied       = "PERMISSION_DENIED" // also every 403: Engage answers bad credentials 403
	CodeUnexpectedError        = "UNEXPECTED_ERROR"  // Transient
	CodeBadRequest             = vendors.CodeBadRequest
	CodeNotFound               = vendors.CodeNotFound
	CodeRateLimited            = vendors.CodeRateLimited
	CodeServerError            = vendors.CodeServerError
	CodeInvalidAnswer          = "invalid_answer"   // a success the client cannot read (Transient)
	CodeInvalidArgument        = "invalid_argument" // the client refused to send the call (Permanent)
	errorActorServer           = "SERVER"
	errorActorClient           = "CLIENT"
	maxReplyBody               = 4 << 20
	maxCodeLen                 = 64
	defaultPermissionDeniedMsg = "permission denied (bad credentials or missing rights)"
)

// codeMessages are the Messages of errors with a known errorCode. Messages
// come from here, never from the reply: Engage echoes identifiers ("Contact
// with identifier=x does not exist.") and no request data may reach an
// error.
var codeMessages = map[string]string{
	CodeArchivedAttribute:     "the attribute is archived",
	CodeIncorrectStatus:       "the object's status does not allow the operation",
	CodeInvalidAttribute:      "invalid attribute",
	CodeInvalidAttributeValue: "invalid attribute value",
	CodeInvalidParameter:      "invalid parameter",
	CodeInvalidRequest:        "invalid request",
	CodeMaxAttributeCount:     "maximum attribute count exceeded",
	CodeMaxSizeExceeded:       "maximum size exceeded",
	CodeMissingParameter:      "a mandatory parameter is missing",
	CodeNoSuchAttribute:       "no such attribute",
	CodeNoSuchObject:          "no such object",
	CodeObjectAlreadyExists:   "the object already exists",
	CodeOperationDisabled:     "the operation is disabled",
	CodePermissionDenied:      defaultPermissionDeniedMsg,
	CodeUnexpectedError:       "unexpected error on the vendor's side",
}

// CodeMessage returns the generic description of an errorCode, or "".
func CodeMessage(code string) string { return codeMessages[code] }

// HasCode reports whether err is (or wraps) an Engage error with that Code.
func HasCode(err error, code string) bool {
	var ve *vendors.Error
	return errors.As(err, &ve) && ve.Vendor == Vendor && ve.Code == code
}

// IsAlreadyExists reports whether err is the refusal to create a contact
// whose identifier is already used (OBJECT_ALREADY_EXISTS).
func IsAlreadyExists(err error) bool { return HasCode(err, CodeObjectAlreadyExists) }

// IsNoSuchObject reports whether err names a missing object
// (NO_SUCH_OBJECT), e.g. UpdateContact of an unknown contact. GetContact
// returns vendors.ErrNotFound instead.
func IsNoSuchObject(err error) bool { return HasCode(err, CodeNoSuchObject) }

// errorBody is Engage's error reply.
type errorBody struct {
	ErrorActor string `json:"errorActor"`
	ErrorCode  string `json:"errorCode"`
}

// parseErrorBody reads errorActor and errorCode; it never fails. An
// errorCode that is not an upper-case identifier ([A-Z0-9_], at most 64
// characters) is ignored, so that nothing but a code reaches Code.
func parseErrorBody(b []byte) errorBody {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return errorBody{}
	}
	var e errorBody
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return strings.TrimSpace(s)
		}
		return ""
	}
	e.ErrorActor = strings.ToUpper(str("errorActor"))
	if c := str("errorCode"); isCode(c) {
		e.ErrorCode = c
	}
	return e
}

func isCode(s string) bool {
	if s == "" || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// CheckResponse reads resp's body (up to 4 MiB) and returns nil for a
// success: a 2xx whose body names no errorCode. Otherwise it returns a
// *vendors.Error (Op empty: the client fills it in). The body read is put
// back into resp.Body; the caller closes it.
//
// Classification:
//   - 429: RateLimited, RetryAfter from Retry-After, Code the errorCode or
//     CodeRateLimited;
//   - 403: Permanent, Code CodePermissionDenied whatever the body (Engage
//     answers bad credentials 403, not 401);
//   - an errorCode: Code is it, Message the generic one of codeMessages
//     (never the vendor's message, which echoes identifiers); Transient
//     when it is UNEXPECTED_ERROR or errorActor is SERVER, Permanent when
//     errorActor is CLIENT or the status is 2xx, else by the status
//     (vendors.ClassifyStatus: 5xx Transient, 4xx Permanent);
//   - no errorCode: Code named after the status (vendors.StatusCode), Kind
//     from vendors.ClassifyStatus.
func CheckResponse(resp *http.Response) error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return checkReply(resp.StatusCode, resp.Header, body, time.Now())
}

func checkReply(status int, h http.Header, body []byte, now time.Time) error {
	ok := status >= 200 && status <= 299
	eb := parseErrorBody(body)
	if ok && eb.ErrorCode == "" {
		return nil
	}
	e := &vendors.Error{Vendor: Vendor, Status: status}
	if h != nil {
		e.RetryAfter = vendors.ParseRetryAfter(h, now)
	}
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind, e.Code = vendors.RateLimited, eb.ErrorCode
		if e.Code == "" {
			e.Code = CodeRateLimited
		}
	case status == http.StatusForbidden:
		e.Kind, e.Code = vendors.Permanent, CodePermissionDenied
	case eb.ErrorCode != "":
		e.Code = eb.ErrorCode
		switch {
		case eb.ErrorCode == CodeUnexpectedError || eb.ErrorActor == errorActorServer:
			e.Kind = vendors.Transient
		case eb.ErrorActor == errorActorClient || ok:
			e.Kind = vendors.Permanent
		default:
			e.Kind = vendors.ClassifyStatus(status)
		}
	default:
		e.Kind, e.Code = vendors.ClassifyStatus(status), vendors.StatusCode(status)
	}
	e.Message = codeMessages[e.Code]
	if e.Message == "" {
		if eb.ErrorCode != "" && e.Code == eb.ErrorCode {
			e.Message = "errorCode " + e.Code
		} else if e.Message = http.StatusText(status); e.Message == "" {
			e.Message = "HTTP " + strconv.Itoa(status)
		}
	}
	return e
}
