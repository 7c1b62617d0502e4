package marta

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// Vendor is the Vendor of every *vendors.Error this package returns.
const Vendor = "marta"

// AnswerCodes of the MARTA (FidelyNET) table, as vendors.Error.Code. A reply
// carrying one of them has it as Code, whatever its HTTP status.
const (
	CodeOK                    = "0"
	CodeCustomerNotFound      = "50"  // customer does not exist
	CodeCustomerInactive      = "53"  // customer inactive: on checkcard (HTTP 402), a new user
	CodeCustomerExists        = "58"  // customer already exists
	CodeInvalidCredentials    = "77"  // invalid user or password
	CodeOperationNotAllowed   = "79"  // operation not allowed (wrong token scope, wrong API key)
	CodeDynamicFieldMandatory = "132" // a mandatory custom (dynamic) field is missing; Fields names it
	CodePasswordError         = "177" // password error
	CodeCustomerNotActive     = "178" // customer not active
	CodeStaticFieldMandatory  = "240" // a mandatory static field is missing; Fields names it
	CodeInvalidEmail          = "260" // invalid email
	CodeInvalidUsername       = "262" // invalid username
	CodeUsernameTaken         = "263" // username already exists
	CodeInvalidPassword       = "264" // invalid password
	CodeEmailTaken            = "311" // email already exists in the campaign
	CodeWrongActivationCode   = "312" // wrong activation code
	CodeVirtualCardNotFound   = "313" // virtual card does not exist
	CodeCardInUse             = "314" // card in use
	CodeWrongVerificationCode = "315" // wrong verification code (OTP)
	CodeInvalidInput          = "996" // invalid input data
	CodeUnknownError          = "997" // unknown error (Transient)
	CodeSessionExpired        = "998" // session closed or expired (the client re-authenticates once; Transient if it persists)
	CodeSQLError              = "999" // SQL error (Transient)
)

// Codes for replies that carry no AnswerCode, and for calls the client
// refuses to send.
const (
	CodeBadRequest      = vendors.CodeBadRequest   // 400 without AnswerCode
	CodeUnauthorized    = vendors.CodeUnauthorized // 401 without AnswerCode
	CodeForbidden       = vendors.CodeForbidden    // 403 without AnswerCode
	CodeNotFound        = vendors.CodeNotFound     // 404 without AnswerCode
	CodeRateLimited     = vendors.CodeRateLimited  // 429
	CodeTimeout         = vendors.CodeTimeout      // 408
	CodeServerError     = vendors.CodeServerError  // 5xx without AnswerCode
	CodeInvalidAnswer   = "invalid_answer"         // a reply the client cannot read (Transient)
	CodeInvalidArgument = "invalid_argument"       // the client refused to send the call (Permanent)
)

// answerMessages is the FidelyNET table: the Message of an error with that
// AnswerCode. Messages come from here, never from the reply, so that no
// request data echoed by the vendor reaches an error.
var answerMessages = map[string]string{
	CodeCustomerNotFound:      "customer does not exist",
	CodeCustomerInactive:      "customer inactive",
	CodeCustomerExists:        "customer already exists",
	CodeInvalidCredentials:    "invalid user or password",
	CodeOperationNotAllowed:   "operation not allowed",
	CodeDynamicFieldMandatory: "dynamic field mandatory",
	CodePasswordError:         "password error",
	CodeCustomerNotActive:     "customer not active",
	CodeStaticFieldMandatory:  "static field mandatory",
	CodeInvalidEmail:          "invalid email",
	CodeInvalidUsername:       "invalid username",
	CodeUsernameTaken:         "username already exists",
	CodeInvalidPassword:       "invalid password",
	CodeEmailTaken:            "email already exists in the campaign",
	CodeWrongActivationCode:   "wrong activation code",
	CodeVirtualCardNotFound:   "virtual card does not exist",
	CodeCardInUse:             "card in use",
	CodeWrongVerificationCode: "wrong verification code",
	CodeInvalidInput:          "invalid input data",
	CodeUnknownError:          "unknown error",
	CodeSessionExpired:        "session closed or expired",
	CodeSQLError:              "SQL error",
}

// AnswerMessage returns the table's description of an AnswerCode ("315"),
// or "" for a code not in the table.
func AnswerMessage(code string) string { return answerMessages[code] }

// HasCode reports whether err is (or wraps) a MARTA error with that Code.
func HasCode(err error, code string) bool {
	var ve *vendors.Error
	return errors.As(err, &ve) && ve.Vendor == Vendor && ve.Code == code
}

// IsWrongCode reports whether err is the refusal of a wrong verification
// code (315): the person may type it again or ask for a new one.
func IsWrongCode(err error) bool { return HasCode(err, CodeWrongVerificationCode) }

// IsUsernameTaken reports whether err is the refusal of a username already
// in use (263).
func IsUsernameTaken(err error) bool { return HasCode(err, CodeUsernameTaken) }

// IsEmailTaken reports whether err is the refusal of an e-mail address
// already in the campaign (311).
func IsEmailTaken(err error) bool { return HasCode(err, CodeEmailTaken) }

// IsMandatoryField reports whether err is a missing mandatory field (132 or
// 240); the error's Fields name it when the vendor did.
func IsMandatoryField(err error) bool {
	return HasCode(err, CodeDynamicFieldMandatory) || HasCode(err, CodeStaticFieldMandatory)
}

// Bounds on what is read from a reply.
const (
	maxReplyBody = 4 << 20
	maxFieldName = 64
	maxCodeLen   = 20 // characters of an unknown AnswerCode kept as Code
)

// CheckResponse reads resp's body (up to 4 MiB) and returns nil when the
// reply is a success: a 2xx status whose body has no AnswerCode or
// AnswerCode 0. Otherwise it returns a *vendors.Error (Op empty: the client
// fills it in). The body read is put back into resp.Body, so the caller can
// decode a success; the caller closes it.
//
// Classification:
//   - 429: RateLimited, with RetryAfter from Retry-After;
//   - an AnswerCode of the table: Code is it (e.g. "315"), Message the
//     table's; 997, 998 and 999 are Transient, the others Permanent, whatever
//     the status; 132 and 240 carry Fields when the body names the field
//     ("Field": "birthdate", or "Fields": ["…"]);
//   - another non-zero AnswerCode: Code is it; Kind from the status
//     (vendors.ClassifyStatus), Permanent on a 2xx;
//   - no AnswerCode: Code named after the status (CodeServerError…), Kind
//     from vendors.ClassifyStatus;
//   - an AnswerCode that is not a number on a 2xx: CodeInvalidAnswer,
//     Transient.
func CheckResponse(resp *http.Response) error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return checkReply(resp.StatusCode, resp.Header, body, time.Now())
}

// envelope is what checkReply reads of a reply body.
type envelope struct {
	hasCode bool   // the body has an AnswerCode
	code    string // it, as a decimal string; "" if it is not a number
	fields  []string
}

// parseEnvelope reads the AnswerCode (any letter case; a number or a
// numeric string) and the field names of a body. It never fails: a body
// that is not a JSON object has no AnswerCode.
func parseEnvelope(b []byte) envelope {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return envelope{}
	}
	var e envelope
	for _, k := range slices.Sorted(maps.Keys(raw)) { // sorted: "AnswerCode" wins over other spellings
		v := raw[k]
		switch strings.ToLower(k) {
		case "answercode":
			if !e.hasCode {
				e.hasCode = true
				e.code = answerCodeOf(v)
			}
		case "field", "fieldname":
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				e.fields = append(e.fields, s)
			}
		case "fields":
			var ss []string
			if json.Unmarshal(v, &ss) == nil {
				for _, s := range ss {
					if s != "" {
						e.fields = append(e.fields, s)
					}
				}
			}
		}
	}
	return e
}

// answerCodeOf returns an AnswerCode as a canonical decimal string ("0",
// "315"), or "" if v is neither an integer nor a string holding one.
func answerCodeOf(v json.RawMessage) string {
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		n = json.Number(strings.TrimSpace(s))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != float64(int64(f)) {
			return ""
		}
		i = int64(f)
	}
	return strconv.FormatInt(i, 10)
}

// checkReply classifies a reply; see CheckResponse. now is the client's
// clock, for an HTTP-date Retry-After.
func checkReply(status int, h http.Header, body []byte, now time.Time) error {
	ok := status >= 200 && status <= 299
	env := parseEnvelope(body)
	if ok && (!env.hasCode || env.code == CodeOK) {
		return nil
	}
	e := &vendors.Error{Vendor: Vendor, Status: status}
	if h != nil {
		e.RetryAfter = vendors.ParseRetryAfter(h, now)
	}
	known := answerMessages[env.code] != ""
	switch {
	case env.hasCode && env.code == "" && ok:
		e.Kind, e.Code, e.Message = vendors.Transient, CodeInvalidAnswer, "the reply's AnswerCode is not a number"
	case env.hasCode && env.code != "" && env.code != CodeOK:
		e.Code = env.code
		if len(e.Code) > maxCodeLen {
			e.Code = e.Code[:maxCodeLen]
		}
		e.Message = answerMessages[env.code]
		if e.Message == "" {
			e.Message = "AnswerCode " + e.Code
		}
		switch {
		case status == http.StatusTooManyRequests:
			e.Kind = vendors.RateLimited
		case env.code == CodeUnknownError || env.code == CodeSessionExpired || env.code == CodeSQLError:
			e.Kind = vendors.Transient
		case known || ok:
			e.Kind = vendors.Permanent
		default:
			e.Kind = vendors.ClassifyStatus(status)
		}
		if env.code == CodeDynamicFieldMandatory || env.code == CodeStaticFieldMandatory {
			for _, f := range env.fields {
				e.Fields = append(e.Fields, vendors.FieldError{Field: truncate(f, maxFieldName), Message: e.Message})
			}
		}
	default: // no usable AnswerCode on a non-2xx (or AnswerCode 0 with an error status)
		e.Kind, e.Code = vendors.ClassifyStatus(status), vendors.StatusCode(status)
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = "HTTP " + strconv.Itoa(status)
		}
	}
	return e
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
