package cloudsuite

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	ra := http.Header{"Retry-After": {"7"}}
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
		{name: "200 page", status: 200, body: `{"count":0,"next":null,"previous":null,"results":[]}`, wantNil: true},
		{name: "201 even with detail", status: 201, body: `{"detail":"x"}`, wantNil: true},
		{name: "204 empty", status: 204, body: ``, wantNil: true},
		{name: "404 detail", status: 404, body: `{"detail":"Not found."}`, kind: vendors.Permanent, code: CodeNotFound, message: "Not found."},
		{name: "404 invalid page", status: 404, body: `{"detail":"Invalid page."}`, kind: vendors.Permanent, code: CodeNotFound, message: "Invalid page."},
		{name: "401 not provided", status: 401, body: `{"detail":"Authentication credentials were not provided."}`, kind: vendors.Permanent, code: CodeNotAuthenticated, message: "Authentication credentials were not provided."},
		{name: "401 simplejwt", status: 401, body: `{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken"}]}`, kind: vendors.Permanent, code: CodeNotAuthenticated, message: "Given token not valid for any token type"},
		{name: "403", status: 403, body: `{"detail":"You do not have permission to perform this action."}`, kind: vendors.Permanent, code: CodePermissionDenied, message: "You do not have permission to perform this action."},
		{name: "405", status: 405, body: `{"detail":"Method \"DELETE\" not allowed."}`, kind: vendors.Permanent, code: CodeMethodNotAllowed, message: `Method "DELETE" not allowed.`},
		{name: "field errors sorted", status: 400, body: `{"key":["user with this key already exists."],"email":["This field is required.","Enter a valid email address."]}`,
			kind: vendors.Permanent, code: CodeInvalid, message: "email: This field is required. Enter a valid email address.; key: user with this key already exists.",
			fields: []vendors.FieldError{{Field: "email", Message: "This field is required. Enter a valid email address."}, {Field: "key", Message: "user with this key already exists."}}},
		{name: "nested field errors", status: 400, body: `{"address":{"zip":["Ensure this field has no more than 10 characters."]},"lines":[{},{"qty":["A valid integer is required."]}]}`,
			kind: vendors.Permanent, code: CodeInvalid,
			fields: []vendors.FieldError{{Field: "address.zip", Message: "Ensure this field has no more than 10 characters."}, {Field: "lines[1].qty", Message: "A valid integer is required."}}},
		{name: "non-field list", status: 400, body: `["Something is wrong."]`, kind: vendors.Permanent, code: CodeInvalid, message: "Something is wrong."},
		{name: "400 empty", status: 400, body: ``, kind: vendors.Permanent, code: CodeInvalid, message: "Bad Request"},
		{name: "oauth invalid_client", status: 401, body: `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`,
			kind: vendors.Permanent, code: CodeInvalidClient, message: credentialsMessage},
		{name: "oauth unsupported grant", status: 400, body: `{"error":"unsupported_grant_type","error_description":"Unsupported grant_type"}`,
			kind: vendors.Permanent, code: CodeUnsupportedGrantType},
		{name: "oauth unknown code", status: 400, body: `{"error":"new_error","error_description":"secret echoed"}`,
			kind: vendors.Permanent, code: "new_error", message: "the token endpoint answered new_error"},
		{name: "oauth temporarily unavailable", status: 400, body: `{"error":"temporarily_unavailable"}`, kind: vendors.Transient, code: "temporarily_unavailable"},
		{name: "oauth error not a code", status: 404, body: `{"error":"Realm does not exist"}`, kind: vendors.Permanent, code: CodeNotFound, message: "Not Found"},
		{name: "injected 503", status: 503, body: `{"message":"injected fault"}`, kind: vendors.Transient, code: CodeServerError, message: "injected fault"},
		{name: "500 html", status: 500, body: `<h1>Server Error (500)</h1>`, kind: vendors.Transient, code: CodeServerError, message: "Internal Server Error"},
		{name: "502 empty", status: 502, body: ``, kind: vendors.Transient, code: CodeServerError, message: "Bad Gateway"},
		{name: "408", status: 408, body: ``, kind: vendors.Transient, code: CodeTimeout},
		{name: "429 throttled", status: 429, body: `{"detail":"Request was throttled. Expected available in 7 seconds."}`, header: ra,
			kind: vendors.RateLimited, code: CodeThrottled, message: "Request was throttled. Expected available in 7 seconds.", retryAfter: 7 * time.Second},
		{name: "429 oauth", status: 429, body: `{"error":"temporarily_unavailable"}`, header: ra, kind: vendors.RateLimited, code: "temporarily_unavailable", retryAfter: 7 * time.Second},
		{name: "413", status: 413, body: `{"detail":"Request body too large."}`, kind: vendors.Permanent, code: "http_413", message: "Request body too large."},
		{name: "418 no body", status: 418, body: ``, kind: vendors.Permanent, code: "http_418", message: "I'm a teapot"},
		{name: "control characters", status: 404, body: "{\"detail\":\"Not\\nfound.\\u0000\"}", kind: vendors.Permanent, code: CodeNotFound, message: "Not found."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(tt.status, tt.body, tt.header)
			err := CheckResponse(resp)
			if tt.wantNil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != tt.body {
				t.Fatalf("body not put back: %q", b)
			}
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v", err)
			}
			if ve.Vendor != Vendor || ve.Kind != tt.kind || ve.Code != tt.code || ve.Status != tt.status || ve.RetryAfter != tt.retryAfter || ve.Message == "" {
				t.Fatalf("got %+v", ve)
			}
			if tt.message != "" && ve.Message != tt.message {
				t.Fatalf("message %q, want %q", ve.Message, tt.message)
			}
			if tt.fields != nil && !slices.Equal(ve.Fields, tt.fields) {
				t.Fatalf("fields %+v, want %+v", ve.Fields, tt.fields)
			}
			if tt.status != http.StatusBadRequest && len(ve.Fields) != 0 {
				t.Fatalf("fields on a %d: %+v", tt.status, ve.Fields)
			}
			if strings.Contains(ve.Error(), "secret") {
				t.Fatalf("error echoes the description: %v", ve)
			}
		})
	}
}

func TestCheckResponseBoundsBody(t *testing.T) {
	body := `{"detail":"` + strings.Repeat("x", 2*maxErrorBody) + `"}`
	resp := response(http.StatusNotFound, body, nil)
	err := CheckResponse(resp)
	var ve *vendors.Error
	if !errors.As(err, &ve) || ve.Code != CodeNotFound || ve.Message != "Not Found" {
		t.Fatalf("%+v", err)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != maxErrorBody {
		t.Fatalf("read %d bytes, want %d", len(b), maxErrorBody)
	}
	long := `{"detail":"` + strings.Repeat("é", 1000) + `"}`
	err = CheckResponse(response(http.StatusNotFound, long, nil))
	if !errors.As(err, &ve) || len(ve.Message) > maxMessageLen+len("…") || !strings.HasSuffix(ve.Message, "…") {
		t.Fatalf("message %d bytes", len(ve.Message))
	}
	fields := make([]string, 200)
	for i := range fields {
		fields[i] = fmt.Sprintf(`"f%03d":["bad"]`, i)
	}
	many := "{" + strings.Join(fields, ",") + "}"
	err = CheckResponse(response(http.StatusBadRequest, many, nil))
	if !errors.As(err, &ve) || len(ve.Fields) != maxFieldErrors || len(ve.Message) > maxMessageLen+len("…") {
		t.Fatalf("fields %d, message %d bytes", len(ve.Fields), len(ve.Message))
	}
}

func TestStatusCode(t *testing.T) {
	for status, want := range map[int]string{
		400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
		405: "method_not_allowed", 429: "throttled", 408: "timeout", 500: "server_error", 503: "server_error",
		409: "http_409", 415: "http_415",
	} {
		if got := StatusCode(status); got != want {
			t.Errorf("StatusCode(%d) = %q, want %q", status, got, want)
		}
	}
}

func FuzzCheckResponse(f *testing.F) {
	f.Add(200, `{"count":1}`, "")
	f.Add(400, `{"key":["user with this key already exists."]}`, "")
	f.Add(401, `{"error":"invalid_client","error_description":"x"}`, "")
	f.Add(404, `{"detail":"Not found."}`, "")
	f.Add(400, `{"a":{"b":[{"c":["d"]}]}}`, "")
	f.Add(429, ``, "99999999999999999999")
	f.Add(-1, `[1,{"x":null}]`, "Mon, 02 Jan 2006 15:04:05 GMT")
	f.Fuzz(func(t *testing.T, status int, body, retry string) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		err := CheckResponse(response(status, body, h))
		if status >= 200 && status <= 299 {
			if err != nil {
				t.Fatalf("status %d gave %v", status, err)
			}
			return
		}
		var ve *vendors.Error
		if !errors.As(err, &ve) {
			t.Fatalf("status %d body %q gave %v, want *vendors.Error", status, body, err)
		}
		if ve.Vendor != Vendor || ve.Kind == 0 || ve.Code == "" || ve.Message == "" || ve.RetryAfter < 0 || ve.RetryAfter > vendors.MaxRetryAfter {
			t.Fatalf("bad classification %+v", ve)
		}
		if ve.Code != StatusCode(status) && !isCode(ve.Code) {
			t.Fatalf("code %q from neither body nor status", ve.Code)
		}
		if len(ve.Fields) > maxFieldErrors || len(ve.Message) > maxMessageLen+len("…") {
			t.Fatalf("unbounded: %d fields, message %d bytes", len(ve.Fields), len(ve.Message))
		}
		if status == http.StatusTooManyRequests && ve.Kind != vendors.RateLimited {
			t.Fatalf("429 gave %v", ve.Kind)
		}
		_ = ve.Error()
	})
}
