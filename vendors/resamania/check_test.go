package resamania

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/vendors"
)

func response(status int, body string, header http.Header) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body))}
}

func TestCheckResponse(t *testing.T) {
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	resetIn := func(d time.Duration) http.Header {
		return http.Header{"X-Rate-Limit-Reset": {strconv.FormatInt(now.Add(d).UnixMilli(), 10)}}
	}
	tests := []struct {
		name       string
		status     int
		body       string
		header     http.Header
		wantNil    bool
		kind       vendors.Kind
		code       string
		message    string
		fields     []vendors.FieldError
		retryAfter time.Duration
	}{
		{name: "200", status: 200, wantNil: true},
		{name: "201", status: 201, body: `{"@id":"/x/contacts/1"}`, wantNil: true},
		{name: "204", status: 204, wantNil: true},
		{
			name: "email already used", status: 400,
			body: `{"@context":"/contexts/Error","@type":"hydra:Error","hydra:title":"An error occurred","hydra:description":"api.error.contact.email-already-used"}`,
			kind: vendors.Permanent, code: CodeEmailAlreadyUsed, message: CodeEmailAlreadyUsed,
		},
		{
			name: "club not valid", status: 400, body: `{"@type":"hydra:Error","hydra:description":"api.error.contact.migration.club-not-valid"}`,
			kind: vendors.Permanent, code: CodeClubNotValid,
		},
		{
			name: "Retry-After too large for a Duration", status: 429, header: http.Header{"Retry-After": {"9227000000"}},
			kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: maxRetryAfter,
		},
		{
			name: "invalid SMS code", status: 400, body: `{"@type":"hydra:Error","hydra:description":"api.error.signature-request.invalid-code"}`,
			kind: vendors.Permanent, code: CodeInvalidCode,
		},
		{
			name: "signature not pending", status: 400, body: `{"@type":"hydra:Error","hydra:description":"api.error.signature-request.invalid-transition"}`,
			kind: vendors.Permanent, code: CodeSignatureNotPending,
		},
		{
			name: "contact not valid", status: 400, body: `{"@type":"hydra:Error","hydra:description":"api.error.contact.migration.contact-not-valid"}`,
			kind: vendors.Permanent, code: CodeContactNotValid,
		},
		{
			name: "violations", status: 400,
			body: `{"@type":"ConstraintViolationList","hydra:description":"mobile: required","violations":[{"propertyPath":"mobile","message":"required"},{"propertyPath":"birthDate","message":"This value is not a valid date."}]}`,
			kind: vendors.Permanent, code: CodeValidation, message: "mobile: required",
			fields: []vendors.FieldError{{Field: "mobile", Message: "required"}, {Field: "birthDate", Message: "This value is not a valid date."}},
		},
		{
			name: "violations without description", status: 422, body: `{"violations":[{"propertyPath":"email","message":"required"}]}`,
			kind: vendors.Permanent, code: CodeValidation, message: "email: required", fields: []vendors.FieldError{{Field: "email", Message: "required"}},
		},
		{
			name: "data sharing denies access", status: 400,
			body: `{"@type":"hydra:Error","hydra:description":"La ressource \"/demoapi/contacts/12\" n'existe pas."}`,
			kind: vendors.Permanent, code: CodeResourceNotAccessible,
		},
		{
			name: "403 scope", status: 403, body: `{"@type":"hydra:Error","hydra:description":"api.error.scope.unauthorized-endpoint"}`,
			kind: vendors.Permanent, code: CodeUnauthorizedEndpoint,
		},
		{
			name: "404 item not found", status: 404, body: `{"@type":"hydra:Error","hydra:title":"An error occurred","hydra:description":"Item not found for \"1357\"."}`,
			kind: vendors.Permanent, code: CodeNotFound, message: `Item not found for "1357".`,
		},
		{name: "401 gateway", status: 401, body: `{"message":"Unauthorized","http_status_code":401}`, kind: vendors.Permanent, code: CodeUnauthorized, message: "Unauthorized"},
		{
			name: "401 oauth", status: 401, body: `{"error":"invalid_client","error_description":"The client credentials are invalid"}`,
			kind: vendors.Permanent, code: "invalid_client", message: "The client credentials are invalid",
		},
		{name: "RFC 7807 detail", status: 400, body: `{"title":"An error occurred","detail":"api.error.contact.migration.contact-not-valid"}`, kind: vendors.Permanent, code: CodeContactNotValid},
		{name: "409 without body", status: 409, kind: vendors.Permanent, code: "http_409", message: "Conflict"},
		{name: "408", status: 408, kind: vendors.Transient, code: CodeTimeout},
		{name: "500 html", status: 500, body: "<html>oops</html>", kind: vendors.Transient, code: CodeServerError, message: "Internal Server Error"},
		{
			name: "503 with Retry-After", status: 503, body: `{"message":"injected fault"}`, header: http.Header{"Retry-After": {"7"}},
			kind: vendors.Transient, code: CodeServerError, message: "injected fault", retryAfter: 7 * time.Second,
		},
		{name: "429 Retry-After", status: 429, header: http.Header{"Retry-After": {"2"}}, kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: 2 * time.Second},
		{name: "429 X-Rate-Limit-Reset in ms", status: 429, header: resetIn(1500 * time.Millisecond), kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: 1500 * time.Millisecond},
		{name: "429 reset in the past", status: 429, header: resetIn(-time.Second), kind: vendors.RateLimited, code: CodeRateLimited},
		{name: "429 reset capped", status: 429, header: resetIn(1000 * time.Hour), kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: 24 * time.Hour},
		{name: "wrong types in body", status: 400, body: `{"hydra:description":5,"violations":"x","message":"m"}`, kind: vendors.Permanent, code: CodeBadRequest, message: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkResponse(response(tt.status, tt.body, tt.header), now)
			if tt.wantNil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *vendors.Error", err)
			}
			if ve.Vendor != Vendor || ve.Status != tt.status || ve.Kind != tt.kind || ve.Code != tt.code || ve.RetryAfter != tt.retryAfter {
				t.Fatalf("got %+v, want kind %v code %q retryAfter %v", ve, tt.kind, tt.code, tt.retryAfter)
			}
			if tt.message != "" && ve.Message != tt.message {
				t.Errorf("Message = %q, want %q", ve.Message, tt.message)
			}
			if !slices.Equal(ve.Fields, tt.fields) {
				t.Errorf("Fields = %v, want %v", ve.Fields, tt.fields)
			}
		})
	}
}

func TestCheckResponseTruncatesLongMessages(t *testing.T) {
	body := fmt.Sprintf(`{"hydra:description":%q}`, strings.Repeat("é", 5000))
	err := CheckResponse(response(400, body, nil))
	var ve *vendors.Error
	if !errors.As(err, &ve) || len([]rune(ve.Message)) > maxMessage+1 {
		t.Fatalf("message of %d runes", len([]rune(ve.Message)))
	}
}

func TestIsEmailAlreadyUsed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New(CodeEmailAlreadyUsed), false},
		{"vendor error", &vendors.Error{Vendor: Vendor, Code: CodeEmailAlreadyUsed}, true},
		{"wrapped", fmt.Errorf("create: %w", &vendors.Error{Vendor: Vendor, Code: CodeEmailAlreadyUsed}), true},
		{"other code", &vendors.Error{Vendor: Vendor, Code: CodeValidation}, false},
		{"other vendor", &vendors.Error{Vendor: "marta", Code: CodeEmailAlreadyUsed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsEmailAlreadyUsed(tt.err); got != tt.want {
				t.Fatalf("IsEmailAlreadyUsed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCodeHelpers(t *testing.T) {
	tests := []struct {
		code string
		is   func(error) bool
	}{
		{CodeInvalidCode, IsInvalidCode},
		{CodeSignatureNotPending, IsSignatureNotPending},
		{CodeClubNotValid, IsClubNotValid},
		{CodeContactNotValid, IsContactNotValid},
		{CodeEmailAlreadyUsed, IsEmailAlreadyUsed},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := fmt.Errorf("step: %w", &vendors.Error{Vendor: Vendor, Code: tt.code})
			if !tt.is(err) || tt.is(&vendors.Error{Vendor: Vendor, Code: CodeValidation}) || tt.is(&vendors.Error{Vendor: "marta", Code: tt.code}) || tt.is(nil) {
				t.Fatal("misclassified")
			}
		})
	}
}

func FuzzCheckResponse(f *testing.F) {
	f.Add(400, `{"@type":"hydra:Error","hydra:description":"api.error.contact.email-already-used"}`, "")
	f.Add(400, `{"violations":[{"propertyPath":"mobile","message":"required"}]}`, "")
	f.Add(400, `{"@type":"hydra:Error","hydra:description":"api.error.signature-request.invalid-code"}`, "")
	f.Add(429, ``, "1700000000000")
	f.Add(401, `{"error":"invalid_client"}`, "")
	f.Add(200, `garbage`, "")
	f.Add(-1, `{"violations":[null,{"propertyPath":5}]}`, "99999999999999999999")
	f.Fuzz(func(t *testing.T, status int, body, reset string) {
		h := http.Header{}
		h.Set("X-Rate-Limit-Reset", reset)
		h.Set("Retry-After", reset)
		err := CheckResponse(response(status, body, h))
		if status >= 200 && status <= 299 {
			if err != nil {
				t.Fatalf("2xx gave %v", err)
			}
			return
		}
		var ve *vendors.Error
		if !errors.As(err, &ve) {
			t.Fatalf("status %d gave %v, want *vendors.Error", status, err)
		}
		if ve.Vendor != Vendor || ve.Kind == 0 || ve.Code == "" || ve.RetryAfter < 0 || ve.RetryAfter > maxRetryAfter {
			t.Fatalf("bad classification %+v", ve)
		}
		_ = ve.Error()
	})
}
