// Package vendors holds what every vendor client shares: the classification of
// vendor failures into permanent, transient and rate-limited errors, decided
// once at the client boundary. Retry and dead-letter decisions read that
// classification and nothing else.
//
// Each vendor has a sub-package holding its HTTP client and its simulator.
package vendors

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Kind says what the caller may do about a failed vendor call.
type Kind int

const (
	// Permanent: the vendor refused the request; repeating it gives the same
	// answer. The flow ends (or branches) on it.
	Permanent Kind = iota + 1
	// Transient: the vendor or the network failed; the same request may
	// succeed later (5xx, timeouts, connection errors).
	Transient
	// RateLimited: the vendor asked us to slow down (429); RetryAfter says
	// when to try again, if the vendor told us.
	RateLimited
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	default:
		return "unknown"
	}
}

// Error is a classified vendor failure. Every error a vendor client returns
// for a reply or a transport failure is an *Error (possibly wrapped).
//
// Message and Code come from the vendor's reply and must never contain
// secrets: clients build them from error bodies, not from requests.
type Error struct {
	Vendor     string        // "resamania", "marta", "engage", "cloudsuite"
	Op         string        // the client operation, e.g. "contacts.create"
	Kind       Kind          // what the caller may do about it
	Status     int           // HTTP status, 0 for a transport failure
	Code       string        // the vendor's own error code or message key, e.g. "api.error.contact.email-already-used"
	Message    string        // a human-readable description
	Fields     []FieldError  // validation errors the vendor named, if any
	RetryAfter time.Duration // for RateLimited (and Transient when the vendor said): when to try again; 0 if unknown
	Err        error         // the underlying transport error, if any
}

// FieldError is one field a vendor reported as invalid or missing.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	s := e.Vendor + " " + e.Op + ": " + e.Kind.String()
	if e.Status != 0 {
		s += " (HTTP " + strconv.Itoa(e.Status) + ")"
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" && e.Message != e.Code {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is (or wraps) a permanent vendor error.
func IsPermanent(err error) bool {
	var ve *Error
	return errors.As(err, &ve) && ve.Kind == Permanent
}

// IsRetryable reports whether err is (or wraps) a transient or rate-limited
// vendor error. Errors that are not vendor errors (context cancellation, bugs)
// are not retryable.
func IsRetryable(err error) bool {
	var ve *Error
	return errors.As(err, &ve) && (ve.Kind == Transient || ve.Kind == RateLimited)
}

// RetryAfterOf returns the vendor's requested delay, or 0.
func RetryAfterOf(err error) time.Duration {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.RetryAfter
	}
	return 0
}

// ClassifyStatus gives the default Kind of an HTTP status: 429 is
// RateLimited, 408, 5xx (and 425) are Transient, every other non-2xx status
// is Permanent. Clients refine it with what the body says.
func ClassifyStatus(status int) Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status >= 500:
		return Transient
	default:
		return Permanent
	}
}

// TransportError classifies a failure to get any reply (connection refused,
// timeout, reset) as Transient. When the caller's own context is done the
// error is returned as is: that is not the vendor's fault and must not be
// retried.
func TransportError(ctx context.Context, vendor, op string, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return &Error{Vendor: vendor, Op: op, Kind: Transient, Message: "request failed", Err: err}
}

// MaxRetryAfter caps what ParseRetryAfter returns: a vendor asking for
// more is treated as asking for a day.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header (delta-seconds or HTTP date);
// it returns 0 when the header is absent or unreadable, and at most
// MaxRetryAfter.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// ErrNotFound is returned (wrapped in nothing) by client look-ups whose
// vendor answer means "no such object" when that is an expected outcome
// rather than a failure.
var ErrNotFound = errors.New("not found")

// Codes of replies whose body names no vendor code, shared by every
// client: the vendor's error code is then the HTTP status in words.
const (
	CodeBadRequest   = "bad_request"  // 400
	CodeUnauthorized = "unauthorized" // 401
	CodeForbidden    = "forbidden"    // 403
	CodeNotFound     = "not_found"    // 404
	CodeTimeout      = "timeout"      // 408
	CodeRateLimited  = "rate_limited" // 429
	CodeServerError  = "server_error" // 5xx
)

// StatusCode is the code of a reply that names none: the status in words,
// or "http_<status>".
func StatusCode(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return CodeBadRequest
	case status == http.StatusUnauthorized:
		return CodeUnauthorized
	case status == http.StatusForbidden:
		return CodeForbidden
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusTooManyRequests:
		return CodeRateLimited
	case status == http.StatusRequestTimeout:
		return CodeTimeout
	case status >= 500:
		return CodeServerError
	default:
		return "http_" + strconv.Itoa(status)
	}
}

type opKey struct{}

// WithOp names the client operation ("contacts.create") a request made
// with ctx belongs to, for the transport's metrics (see package guard).
func WithOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// OpOf returns the operation WithOp named, or "".
func OpOf(ctx context.Context) string {
	op, _ := ctx.Value(opKey{}).(string)
	return op
}
