package engage

import (
	"errors"
	"io"
	"net/http"
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
		retryAfter time.Duration
	}{
		{name: "200 contact", status: 200, body: `{"contactId":1,"emailAddress":"a@b.c"}`, wantNil: true},
		{name: "204 empty", status: 204, body: ``, wantNil: true},
		{name: "missing contact", status: 400, body: `{"errorActor":"CLIENT","errorCode":"NO_SUCH_OBJECT","message":"Contact with identifier=a@b.c does not exist."}`, kind: vendors.Permanent, code: CodeNoSuchObject},
		{name: "exists", status: 400, body: `{"errorActor":"CLIENT","errorCode":"OBJECT_ALREADY_EXISTS"}`, kind: vendors.Permanent, code: CodeObjectAlreadyExists},
		{name: "403 bad credentials", status: 403, body: `{"errorActor":"CLIENT","errorCode":"INVALID_REQUEST"}`, kind: vendors.Permanent, code: CodePermissionDenied},
		{name: "403 html", status: 403, body: `<html>Forbidden</html>`, kind: vendors.Permanent, code: CodePermissionDenied},
		{name: "unexpected error", status: 500, body: `{"errorActor":"SERVER","errorCode":"UNEXPECTED_ERROR"}`, kind: vendors.Transient, code: CodeUnexpectedError},
		{name: "unexpected error on 400", status: 400, body: `{"errorCode":"UNEXPECTED_ERROR"}`, kind: vendors.Transient, code: CodeUnexpectedError},
		{name: "server actor", status: 400, body: `{"errorActor":"SERVER","errorCode":"OPERATION_DISABLED"}`, kind: vendors.Transient, code: CodeOperationDisabled},
		{name: "client actor on 500", status: 500, body: `{"errorActor":"CLIENT","errorCode":"INVALID_ATTRIBUTE"}`, kind: vendors.Permanent, code: CodeInvalidAttribute},
		{name: "code on 200", status: 200, body: `{"errorCode":"MISSING_PARAMETER"}`, kind: vendors.Permanent, code: CodeMissingParameter},
		{name: "unknown code on 503", status: 503, body: `{"errorCode":"NEW_CODE"}`, kind: vendors.Transient, code: "NEW_CODE"},
		{name: "code with data ignored", status: 400, body: `{"errorCode":"a@b.c"}`, kind: vendors.Permanent, code: CodeBadRequest},
		{name: "injected 503", status: 503, body: `{"message":"injected fault"}`, kind: vendors.Transient, code: CodeServerError},
		{name: "429", status: 429, body: `{"message":"injected rate limit"}`, header: ra, kind: vendors.RateLimited, code: CodeRateLimited, retryAfter: 7 * time.Second},
		{name: "404", status: 404, body: ``, kind: vendors.Permanent, code: CodeNotFound},
		{name: "401", status: 401, body: ``, kind: vendors.Permanent, code: vendors.CodeUnauthorized},
		{name: "504", status: 504, body: `gateway`, kind: vendors.Transient, code: CodeServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(tt.status, tt.body, tt.header)
			err := CheckResponse(resp)
			if b, _ := io.ReadAll(resp.Body); string(b) != tt.body {
				t.Fatalf("body not put back: %q", b)
			}
			if tt.wantNil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *vendors.Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v", err)
			}
			if ve.Vendor != Vendor || ve.Kind != tt.kind || ve.Code != tt.code || ve.Status != tt.status || ve.RetryAfter != tt.retryAfter || ve.Message == "" {
				t.Fatalf("got %+v", ve)
			}
			if strings.Contains(ve.Error(), "a@b.c") {
				t.Fatalf("error echoes request data: %v", ve)
			}
		})
	}
}

func FuzzCheckResponse(f *testing.F) {
	f.Add(200, `{"contactId":1}`, "")
	f.Add(400, `{"errorActor":"CLIENT","errorCode":"NO_SUCH_OBJECT","message":"Contact with identifier=x does not exist."}`, "")
	f.Add(500, `{"errorActor":"SERVER","errorCode":"UNEXPECTED_ERROR"}`, "")
	f.Add(403, ``, "")
	f.Add(200, `{"errorCode":5}`, "")
	f.Add(429, ``, "99999999999999999999")
	f.Add(-1, `{"errorCode":["x"],"errorActor":null}`, "Mon, 02 Jan 2006 15:04:05 GMT")
	f.Fuzz(func(t *testing.T, status int, body, retry string) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		err := CheckResponse(response(status, body, h))
		ok := status >= 200 && status <= 299
		eb := parseErrorBody([]byte(body))
		if ok && eb.ErrorCode == "" {
			if err != nil {
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
		if ve.Code != eb.ErrorCode && ve.Code != CodePermissionDenied && ve.Code != vendors.StatusCode(status) {
			t.Fatalf("code %q from neither body nor status", ve.Code)
		}
		if !isCode(ve.Code) && ve.Code != vendors.StatusCode(status) {
			t.Fatalf("code %q is not a code", ve.Code)
		}
		if status == http.StatusForbidden && ve.Kind != vendors.Permanent {
			t.Fatalf("403 gave %v", ve.Kind)
		}
		_ = ve.Error()
	})
}
