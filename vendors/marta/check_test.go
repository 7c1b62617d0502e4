package marta

import (
	"errors"
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
	tests := []struct {
		name       string
		status     int
		body       string
		header     http.Header
		wantNil    bool
		kind       vendors.Kind
		code       string
		message    string
		fields     []string
		retryAfter time.Duration
	}{
		{name: "200 ok", status: 200, body: `{"AnswerCode":0,"token":"x"}`, wantNil: true},
		{name: "200 without envelope", status: 200, body: `{"token":"x"}`, wantNil: true},
		{name: "200 string zero", status: 200, body: `{"answercode":"0"}`, wantNil: true},
		{name: "200 business error", status: 200, body: `{"AnswerCode":315}`, kind: vendors.Permanent, code: "315", message: "wrong verification code"},
		{name: "checkcard new user", status: 402, body: `{"AnswerCode":53}`, kind: vendors.Permanent, code: CodeCustomerInactive},
		{name: "username taken", status: 400, body: `{"AnswerCode":263,"Message":"echo of secret"}`, kind: vendors.Permanent, code: CodeUsernameTaken, message: "username already exists"},
		{name: "email taken", status: 400, body: `{"AnswerCode":"311"}`, kind: vendors.Permanent, code: CodeEmailTaken},
		{name: "static mandatory", status: 400, body: `{"AnswerCode":240,"Field":"birthdate"}`, kind: vendors.Permanent, code: CodeStaticFieldMandatory, fields: []string{"birthdate"}},
		{name: "dynamic mandatory list", status: 400, body: `{"AnswerCode":132,"Fields":["usedforpromotions"]}`, kind: vendors.Permanent, code: CodeDynamicFieldMandatory, fields: []string{"usedforpromotions"}},
		{name: "session expired", status: 401, body: `{"AnswerCode":998}`, kind: vendors.Transient, code: CodeSessionExpired},
		{name: "unknown error", status: 500, body: `{"AnswerCode":997}`, kind: vendors.Transient, code: CodeUnknownError},
		{name: "sql error on 200", status: 200, body: `{"AnswerCode":999}`, kind: vendors.Transient, code: CodeSQLError},
		{name: "business code on 500 is permanent", status: 500, body: `{"AnswerCode":315}`, kind: vendors.Permanent, code: CodeWrongVerificationCode},
		{name: "unknown code on 503", status: 503, body: `{"AnswerCode":4242}`, kind: vendors.Transient, code: "4242", message: "AnswerCode 4242"},
		{name: "scope refused", status: 403, body: `{"AnswerCode":79}`, kind: vendors.Permanent, code: CodeOperationNotAllowed},
		{name: "injected 503", status: 503, body: `{"message":"injected fault"}`, kind: vendors.Transient, code: CodeServerError},
		{name: "429", status: 429, body: `{"message":"x"}`, header: http.Header{"Retry-After": {"7"}}, kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: 7 * time.Second},
		{name: "429 with AnswerCode", status: 429, body: `{"AnswerCode":997}`, header: http.Header{"Retry-After": {"2"}}, kind: vendors.RateLimited, code: CodeUnknownError, retryAfter: 2 * time.Second},
		{name: "408", status: 408, kind: vendors.Transient, code: CodeTimeout},
		{name: "401 bare", status: 401, body: `Unauthorized`, kind: vendors.Permanent, code: CodeUnauthorized},
		{name: "200 non-numeric AnswerCode", status: 200, body: `{"AnswerCode":true}`, kind: vendors.Transient, code: CodeInvalidAnswer},
		{name: "400 AnswerCode 0", status: 400, body: `{"AnswerCode":0}`, kind: vendors.Permanent, code: CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(tt.status, tt.body, tt.header)
			err := CheckResponse(resp)
			if b, _ := io.ReadAll(resp.Body); string(b) != tt.body {
				t.Errorf("body not restored: %q", b)
			}
			if tt.wantNil {
				if err != nil {
					t.Fatalf("CheckResponse = %v, want nil", err)
				}
				return
			}
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("CheckResponse = %v, want *vendors.Error", err)
			}
			if ve.Vendor != Vendor || ve.Kind != tt.kind || ve.Code != tt.code || ve.Status != tt.status || ve.RetryAfter != tt.retryAfter {
				t.Fatalf("got %+v, want kind %v code %q retry %v", ve, tt.kind, tt.code, tt.retryAfter)
			}
			if tt.message != "" && ve.Message != tt.message {
				t.Errorf("Message = %q, want %q", ve.Message, tt.message)
			}
			var fields []string
			for _, f := range ve.Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("Fields = %v, want %v", fields, tt.fields)
			}
			if strings.Contains(ve.Error(), "secret") {
				t.Errorf("the vendor's text reached the error: %v", ve)
			}
		})
	}
}

func TestCodeHelpers(t *testing.T) {
	wrong := &vendors.Error{Vendor: Vendor, Code: CodeWrongVerificationCode}
	if !IsWrongCode(wrong) || !IsWrongCode(errWrap{wrong}) || IsWrongCode(&vendors.Error{Vendor: "resamania", Code: "315"}) || IsWrongCode(nil) {
		t.Fatal("IsWrongCode")
	}
	if !IsUsernameTaken(&vendors.Error{Vendor: Vendor, Code: "263"}) || !IsEmailTaken(&vendors.Error{Vendor: Vendor, Code: "311"}) {
		t.Fatal("IsUsernameTaken / IsEmailTaken")
	}
	if !IsMandatoryField(&vendors.Error{Vendor: Vendor, Code: "132"}) || !IsMandatoryField(&vendors.Error{Vendor: Vendor, Code: "240"}) {
		t.Fatal("IsMandatoryField")
	}
}

type errWrap struct{ err error }

func (e errWrap) Error() string { return "wrapped: " + e.err.Error() }
func (e errWrap) Unwrap() error { return e.err }

func FuzzCheckResponse(f *testing.F) {
	f.Add(200, `{"AnswerCode":0}`, "")
	f.Add(402, `{"AnswerCode":53}`, "")
	f.Add(400, `{"AnswerCode":132,"Field":"birthdate"}`, "")
	f.Add(200, `{"AnswerCode":"315"}`, "")
	f.Add(200, `{"AnswerCode":1e400}`, "")
	f.Add(200, `{"AnswerCode":-0.0,"answercode":3}`, "")
	f.Add(429, ``, "99999999999999999999")
	f.Add(-1, `{"Fields":[null,5],"AnswerCode":[1]}`, "Mon, 02 Jan 2006 15:04:05 GMT")
	f.Fuzz(func(t *testing.T, status int, body, retry string) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		err := CheckResponse(response(status, body, h))
		env := parseEnvelope([]byte(body))
		ok := status >= 200 && status <= 299
		mustFail := !ok || (env.hasCode && env.code != CodeOK)
		if !mustFail {
			if err != nil && !(ok && !env.hasCode) {
				t.Fatalf("status %d body %q gave %v", status, body, err)
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
		_ = ve.Error()
	})
}
