package resamania

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

// Vendor is the Vendor of every *vendors.Error this package returns.
const Vendor = "resamania"

// Codes of vendors.Error.Code that callers branch on. Message keys
// ("api.error.…") are Resamania's own; the others are this client's names
// for answers that carry no key.
const (
	// CodeEmailAlreadyUsed: POST /contacts with an email already used under
	// the clientToken, in any club (400).
	CodeEmailAlreadyUsed = "api.error.contact.email-already-used"
	// CodeValidation: a ConstraintViolationList (400), typically "required"
	// fields; Fields lists them.
	CodeValidation = "validation"
	// CodeClubNotValid: a migration or transfer to the contact's current club (400).
	CodeClubNotValid = "api.error.contact.migration.club-not-valid"
	// CodeContactNotValid: the contact cannot be transferred (it is neither
	// prospect nor old_client) or migrated (the source is not a prospect or
	// the target not temp) (400).
	CodeContactNotValid = "api.error.contact.migration.contact-not-valid"
	// CodeInvalidCode: POST /signature_requests/{id}/transitions "validate"
	// with a code that is not the one sent by SMS (400). The request stays
	// pending: the person may try again (the vendor does not count
	// attempts).
	CodeInvalidCode = "api.error.signature-request.invalid-code"
	// CodeSignatureNotPending: a transition of a signature request that is
	// no longer pending: already validated or cancelled (400).
	CodeSignatureNotPending = "api.error.signature-request.invalid-transition"
	// CodeUnauthorizedEndpoint: the token's scope does not allow the
	// endpoint, e.g. a contact-scoped token searching contacts (403).
	CodeUnauthorizedEndpoint = "api.error.scope.unauthorized-endpoint"
	// CodeResourceNotAccessible: `La ressource "/{ct}/contacts/{id}"
	// n'existe pas.` (400): the network's data-sharing rules hide the
	// resource from the club the call is made for.
	CodeResourceNotAccessible = "resource_not_accessible"

	CodeBadRequest    = vendors.CodeBadRequest   // 400 without a recognised key
	CodeUnauthorized  = vendors.CodeUnauthorized // 401 without an OAuth error code (the gateway's "Unauthorized")
	CodeForbidden     = vendors.CodeForbidden    // 403 without a message key
	CodeNotFound      = vendors.CodeNotFound     // 404: unknown resource, a bare id instead of an IRI, wrong scope headers
	CodeRateLimited   = vendors.CodeRateLimited  // 429
	CodeServerError   = vendors.CodeServerError  // 5xx
	CodeTimeout       = vendors.CodeTimeout      // 408
	CodeInvalidAnswer = "invalid_answer"         // a 2xx reply the client could not read
)

// IsEmailAlreadyUsed reports whether err is (or wraps) Resamania's
// email-already-used refusal.
func IsEmailAlreadyUsed(err error) bool { return hasCode(err, CodeEmailAlreadyUsed) }

// IsInvalidCode reports whether err is (or wraps) the refusal of a wrong
// SMS code (CodeInvalidCode).
func IsInvalidCode(err error) bool { return hasCode(err, CodeInvalidCode) }

// IsSignatureNotPending reports whether err is (or wraps) the refusal of a
// transition of an already validated or cancelled signature request
// (CodeSignatureNotPending).
func IsSignatureNotPending(err error) bool { return hasCode(err, CodeSignatureNotPending) }

// IsClubNotValid reports whether err is (or wraps) CodeClubNotValid: a
// transfer or migration to the contact's own club.
func IsClubNotValid(err error) bool { return hasCode(err, CodeClubNotValid) }

// IsContactNotValid reports whether err is (or wraps) CodeContactNotValid:
// a contact in a state that cannot be transferred or migrated.
func IsContactNotValid(err error) bool { return hasCode(err, CodeContactNotValid) }

func hasCode(err error, code string) bool {
	var ve *vendors.Error
	return errors.As(err, &ve) && ve.Vendor == Vendor && ve.Code == code
}

// Bounds on what is read from a reply.
const (
	maxErrorBody   = 64 << 10
	maxSuccessBody = 4 << 20
	maxMessage     = 300 // characters of a vendor message kept in an error
	maxRetryAfter  = 24 * time.Hour
)

// CheckResponse returns nil for a 2xx reply and a *vendors.Error otherwise,
// classified from the status and the body (read up to 64 KiB; the caller
// closes it). Op is left empty: the client fills it in. See checkResponse
// for the rules.
func CheckResponse(resp *http.Response) error {
	return checkResponse(resp, time.Now())
}

// errorBody holds every error shape Resamania's stack answers with: Hydra
// (API Platform) errors and constraint violations, RFC 7807 problems, OAuth2
// errors from the token endpoint and the API firewall, and the Gravitee
// gateway's {"message": …}. Each field is decoded on its own so that one
// field of an unexpected type does not hide the others.
type errorBody struct {
	Type        string
	Title       string
	Description string
	Detail      string
	Message     string
	OAuthError  string
	OAuthDesc   string
	Violations  []vendors.FieldError
}

func parseErrorBody(b []byte) errorBody {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return errorBody{}
	}
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return strings.TrimSpace(s)
		}
		return ""
	}
	e := errorBody{
		Type: str("@type"), Title: str("hydra:title"), Description: str("hydra:description"),
		Detail: str("detail"), Message: str("message"), OAuthError: str("error"), OAuthDesc: str("error_description"),
	}
	if e.Title == "" {
		e.Title = str("title")
	}
	var vs []map[string]json.RawMessage
	if v, ok := raw["violations"]; ok && json.Unmarshal(v, &vs) == nil {
		for _, v := range vs {
			var f vendors.FieldError
			_ = json.Unmarshal(v["propertyPath"], &f.Field)
			_ = json.Unmarshal(v["message"], &f.Message)
			if f.Field != "" || f.Message != "" {
				f.Message = truncate(f.Message)
				e.Violations = append(e.Violations, f)
			}
		}
	}
	return e
}

// messageKey matches Resamania's message keys, e.g.
// "api.error.contact.email-already-used".
var messageKey = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$`)

// notAccessible matches `La ressource "/x/contacts/1" n'existe pas.` (with
// straight or curly apostrophes) and its English form.
var notAccessible = regexp.MustCompile(`(?i)^(la ressource .* n.existe pas|the resource .* does not exist)`)

// checkResponse classifies a reply; now is the client's clock, used to turn
// X-Rate-Limit-Reset (epoch milliseconds) into a delay.
//
//   - 2xx: nil.
//   - Kind: vendors.ClassifyStatus (429 RateLimited; 408, 425, 5xx Transient;
//     any other status Permanent).
//   - Code: CodeValidation for a ConstraintViolationList (Fields from its
//     violations); the hydra:description (or RFC 7807 detail) when it is a
//     message key; CodeResourceNotAccessible for the French "n'existe pas";
//     the OAuth2 "error" (invalid_client, invalid_grant, access_denied…);
//     else a code named after the status (CodeNotFound, CodeUnauthorized…).
//   - Message: the vendor's description, truncated; never request data.
//   - RetryAfter: Retry-After, else X-Rate-Limit-Reset (epoch ms) or
//     X-Spike-Arrest-Reset relative to now, for any status.
func checkResponse(resp *http.Response, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	eb := parseErrorBody(body)
	e := &vendors.Error{
		Vendor:     Vendor,
		Kind:       vendors.ClassifyStatus(resp.StatusCode),
		Status:     resp.StatusCode,
		RetryAfter: retryAfter(resp.Header, now),
	}
	desc := firstNonEmpty(eb.Description, eb.Detail)
	switch {
	case len(eb.Violations) > 0:
		e.Code, e.Fields = CodeValidation, eb.Violations
		if desc == "" {
			parts := make([]string, len(eb.Violations))
			for i, f := range eb.Violations {
				parts[i] = f.Field + ": " + f.Message
			}
			desc = strings.Join(parts, "\n")
		}
	case messageKey.MatchString(desc):
		e.Code = desc
	case notAccessible.MatchString(desc):
		e.Code = CodeResourceNotAccessible
	case eb.OAuthError != "" && len(eb.OAuthError) <= 64:
		e.Code = eb.OAuthError
	default:
		e.Code = vendors.StatusCode(resp.StatusCode)
	}
	e.Message = truncate(firstNonEmpty(desc, eb.OAuthDesc, eb.Message, eb.Title, http.StatusText(resp.StatusCode)))
	return e
}

// retryAfter reads Retry-After, then the gateway's reset headers (epoch
// milliseconds). It returns 0 when none says a future time, and caps the
// delay at a day (the daily quota's horizon).
func retryAfter(h http.Header, now time.Time) time.Duration {
	d := vendors.ParseRetryAfter(h, now)
	if d < 0 { // delta-seconds too large for a Duration: as long as we wait
		return maxRetryAfter
	}
	if d == 0 {
		for _, k := range []string{"X-Rate-Limit-Reset", "X-Spike-Arrest-Reset", "X-Quota-Reset"} {
			ms, err := strconv.ParseInt(strings.TrimSpace(h.Get(k)), 10, 64)
			if err != nil || ms <= 0 {
				continue
			}
			if d = time.UnixMilli(ms).Sub(now); d > 0 {
				break
			}
			d = 0
		}
	}
	return min(d, maxRetryAfter)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func truncate(s string) string {
	if r := []rune(s); len(r) > maxMessage {
		return string(r[:maxMessage]) + "…"
	}
	return s
}
