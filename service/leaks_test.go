package service_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/registrar-dev/registrar/vendors/marta"
)

// scanForSecrets fails the test when a secret the test used appears in
// the service's logs, events, dead letters, /metrics or status answers:
// vendor credentials, the sign-up password, every code the simulators sent,
// tokens.
func (e *env) scanForSecrets() {
	t := e.t
	if e.svc == nil || e.nc == nil || e.nc.IsClosed() {
		return
	}
	var corpus strings.Builder
	corpus.WriteString(e.logs.String())
	ids := map[string]bool{}
	for _, c := range []*collector{e.events, e.dlq} {
		for _, m := range c.all() {
			corpus.Write(m.Data)
			for k, vs := range m.Header {
				corpus.WriteString("\n" + k + ": " + strings.Join(vs, ","))
			}
			if m.Event.RegistrationID != "" {
				ids[m.Event.RegistrationID] = true
			}
		}
	}
	paths := []string{"/metrics"}
	for id := range ids {
		paths = append(paths, "/v1/registrations/"+id)
	}
	for _, p := range paths {
		resp, err := http.Get("http://" + e.svc.AdminAddr() + p)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		corpus.Write(b)
	}
	text := corpus.String()

	literal := map[string]string{
		"sign-up password":         martaPassword,
		"MARTA API key":            marta.DemoAPIKey,
		"CloudSuite client secret": e.csSim.ClientSecret,
	}
	for _, a := range []string{e.account.ClientSecret, e.strict.ClientSecret} {
		if strings.Contains(text, a) {
			t.Errorf("a Resamania client secret appears in logs, events, dead letters, metrics or status")
		}
	}
	for _, a := range []string{e.account.APIKey, e.strict.APIKey} {
		if strings.Contains(text, a) {
			t.Errorf("a Resamania API key appears in logs, events, dead letters, metrics or status")
		}
	}
	for name, s := range literal {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("the %s appears in logs, events, dead letters, metrics or status", name)
		}
	}
	// Token fields as a vendor sends them (JSON keys, form or query
	// parameters) — not the bare words, which name client operations
	// ("auth.refresh_token") in metric labels.
	for _, marker := range []string{`"access_token":`, `"refresh_token":`, "access_token=", "refresh_token=", "Bearer "} {
		if strings.Contains(text, marker) {
			t.Errorf("%q appears in logs, events, dead letters, metrics or status", marker)
		}
	}
	var codes []string
	for _, c := range e.sims.Marta.Codes() {
		codes = append(codes, c.Code)
	}
	for _, s := range e.sims.Resamania.SMS() {
		codes = append(codes, s.Code)
	}
	for _, code := range codes {
		// A code standing alone, not a run of digits inside a timestamp,
		// a number or an id.
		if regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(code) + `([^0-9A-Za-z]|$)`).MatchString(text) {
			t.Errorf("a one-time code the simulators sent appears in logs, events, dead letters, metrics or status")
		}
	}
}
