package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// TestVendorRefusalsMapToStableCodes covers the documented refusals that
// the end-to-end tests cannot provoke one by one.
func TestVendorRefusalsMapToStableCodes(t *testing.T) {
	martaErr := func(code string, fields ...vendors.FieldError) error {
		return &vendors.Error{Vendor: "marta", Op: "x", Kind: vendors.Permanent, Status: http.StatusBadRequest, Code: code, Fields: fields}
	}
	resaErr := func(status int, code string) error {
		return &vendors.Error{Vendor: resamania.Vendor, Op: "x", Kind: vendors.Permanent, Status: status, Code: code}
	}
	tests := []struct {
		name      string
		got       func() (events.ErrorInfo, bool)
		wantCode  string
		wantField string
	}{
		{"marta 263", martaTerminal(martaErr(marta.CodeUsernameTaken)), events.CodeUsernameTaken, ""},
		{"marta 311", martaTerminal(martaErr(marta.CodeEmailTaken)), events.CodeEmailTaken, ""},
		{"marta 132 names the field", martaTerminal(martaErr(marta.CodeDynamicFieldMandatory, vendors.FieldError{Field: "birthdate", Message: "mandatory"})),
			events.CodeMandatoryFields, "profile.birthdate"},
		{"marta 240", martaTerminal(martaErr(marta.CodeStaticFieldMandatory)), events.CodeMandatoryFields, ""},
		{"resamania n'existe pas", fixed(resamaniaFailure(resaErr(400, resamania.CodeResourceNotAccessible), "acme")), events.CodeAccessDenied, ""},
		{"resamania 403 scope", fixed(resamaniaFailure(resaErr(403, resamania.CodeUnauthorizedEndpoint), "acme")), events.CodeAccessDenied, ""},
		{"resamania club-not-valid", fixed(resamaniaFailure(resaErr(400, resamania.CodeClubNotValid), "acme")), events.CodeContactNotTransferable, ""},
		{"resamania contact-not-valid", fixed(resamaniaFailure(resaErr(400, resamania.CodeContactNotValid), "acme")), events.CodeContactNotTransferable, ""},
		{"resamania 401 names the keys", fixed(resamaniaFailure(resaErr(401, resamania.CodeUnauthorized), "acme")), events.CodeVendorRejected, ""},
		{"resamania 404", fixed(resamaniaFailure(resaErr(404, resamania.CodeNotFound), "acme")), events.CodeVendorRejected, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok := tt.got()
			if !ok {
				t.Fatal("not mapped")
			}
			if info.Code != tt.wantCode || info.VendorStatus == 0 || info.VendorCode == "" {
				t.Errorf("info = %+v, want code %s with the vendor's status and code", info, tt.wantCode)
			}
			if tt.wantField != "" && (len(info.Fields) != 1 || info.Fields[0].Field != tt.wantField) {
				t.Errorf("fields = %+v, want %s", info.Fields, tt.wantField)
			}
		})
	}
	if info := resamaniaFailure(resaErr(401, resamania.CodeUnauthorized), "acme"); !contains(info.Message, "tenants.acme.resamania.clientId") {
		t.Errorf("401 message does not say what to fix: %s", info.Message)
	}
	if _, ok := martaRefusal(&vendors.Error{Vendor: "marta", Kind: vendors.Transient, Code: "997"}); ok {
		t.Error("a transient error was mapped to a failure")
	}
}

func martaTerminal(err error) func() (events.ErrorInfo, bool) {
	return func() (events.ErrorInfo, bool) {
		tr, ok := martaRefusal(err)
		if !ok {
			return events.ErrorInfo{}, false
		}
		return tr.Terminal.(*events.Failed).Error, true
	}
}

func fixed(info events.ErrorInfo) func() (events.ErrorInfo, bool) {
	return func() (events.ErrorInfo, bool) { return info, true }
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
