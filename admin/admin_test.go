package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/registrar-dev/registrar/admin"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/sqlite"
)

// newServer returns an admin server on 127.0.0.1:0 served through httptest
// on its Handler. The listener New opens is released by running the server
// and stopping it at the end of the test.
func newServer(t *testing.T, cfg admin.Config) *httptest.Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	s, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs
}

// get fetches path and returns the status and body.
func get(t *testing.T, base, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHealthz(t *testing.T) {
	hs := newServer(t, admin.Config{
		// Liveness does not depend on the dependencies.
		Checks: []admin.Check{{Name: "nats", Check: func(context.Context) error { return errors.New("down") }}},
	})
	code, body, _ := get(t, hs.URL, "/healthz")
	if code != http.StatusOK {
		t.Fatalf("status %d, body %s", code, body)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got["status"] != "ok" {
		t.Errorf("body %v, want status ok", got)
	}
}

// TestRunServesOnItsListener checks Run serves on Addr and stops when its
// context ends.
func TestRunServesOnItsListener(t *testing.T) {
	s, err := admin.New(admin.Config{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	code, body, _ := get(t, "http://"+s.Addr(), "/healthz")
	if code != http.StatusOK {
		t.Fatalf("status %d, body %s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	failing := func(context.Context) error { return errors.New("connection refused") }
	tests := []struct {
		name       string
		checks     []admin.Check
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{
			name:       "no checks",
			wantCode:   http.StatusOK,
			wantStatus: "ready",
			wantChecks: map[string]string{},
		},
		{
			name:       "all ok",
			checks:     []admin.Check{{Name: "nats", Check: ok}, {Name: "store", Check: ok}, {Name: "consumers", Check: ok}},
			wantCode:   http.StatusOK,
			wantStatus: "ready",
			wantChecks: map[string]string{"nats": "ok", "store": "ok", "consumers": "ok"},
		},
		{
			name:       "store fails",
			checks:     []admin.Check{{Name: "nats", Check: ok}, {Name: "store", Check: failing}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"nats": "ok", "store": "connection refused"},
		},
		{
			name:       "all fail",
			checks:     []admin.Check{{Name: "nats", Check: failing}, {Name: "store", Check: failing}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"nats": "connection refused", "store": "connection refused"},
		},
		{
			name: "check sees a deadline",
			checks: []admin.Check{{Name: "slow", Check: func(ctx context.Context) error {
				if _, ok := ctx.Deadline(); !ok {
					return errors.New("no deadline")
				}
				return nil
			}}},
			wantCode:   http.StatusOK,
			wantStatus: "ready",
			wantChecks: map[string]string{"slow": "ok"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newServer(t, admin.Config{Checks: tt.checks})
			code, body, hdr := get(t, hs.URL, "/readyz")
			if code != tt.wantCode {
				t.Errorf("status %d, want %d; body %s", code, tt.wantCode, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.Status != tt.wantStatus {
				t.Errorf("status %q, want %q", got.Status, tt.wantStatus)
			}
			if !reflect.DeepEqual(got.Checks, tt.wantChecks) {
				t.Errorf("checks %v, want %v", got.Checks, tt.wantChecks)
			}
		})
	}
}

func TestMetricsServesItsOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "registrar_admin_test_total", Help: "A counter of the test."})
	reg.MustRegister(c)
	c.Add(3)
	hs := newServer(t, admin.Config{Gatherer: reg})

	code, body, _ := get(t, hs.URL, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("status %d, body %s", code, body)
	}
	if !strings.Contains(body, "registrar_admin_test_total 3") {
		t.Errorf("the registry's counter is missing:\n%s", body)
	}
	// The global default registry holds the Go collector; it must not
	// leak into the service's metrics.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if strings.Contains(body, name) {
			t.Errorf("%s served although not registered:\n%s", name, body)
		}
	}
}

// fakeFlows is a FlowReader that fails.
type fakeFlows struct{ err error }

func (f fakeFlows) Flow(context.Context, string) (store.Flow, error) { return store.Flow{}, f.err }
func (f fakeFlows) WaitingFlows(context.Context, string, int) ([]store.Flow, error) {
	return nil, f.err
}

func TestRegistrationStatus(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	flows := []store.Flow{
		{
			RegistrationID: "reg-1",
			Flow:           "resamania.register",
			Tenant:         "acme",
			Status:         store.StatusRunning,
			Step:           "resamania.lookup",
			Seq:            1,
			Data:           []byte(`{"command":{"password":"hunter2"},"steps":[],"events":[]}`),
		},
		{
			RegistrationID: "reg-waiting",
			Flow:           "resamania.register",
			Tenant:         "acme",
			Status:         store.StatusWaiting,
			Step:           "resamania.otp",
			Seq:            3,
			WaitingFor:     "otp",
			Deadline:       time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			Data: []byte(`{"command":{"password":"hunter2","email":"a@example.com"},
				"steps":[{"step":"resamania.lookup","seq":1,"startedAt":"2026-11-01T10:00:00Z","finishedAt":"2026-11-01T10:00:01Z","attempts":2,"outcome":"ok"}],
				"events":[{"eventId":"e-1","type":"resamania.contact_found","occurredAt":"2026-11-01T10:00:01Z"}],
				"lastError":{"at":"2026-11-01T10:00:00Z","step":"resamania.lookup","code":"vendor_unavailable","message":"503"}}`),
		},
		{
			RegistrationID: "reg-corrupt",
			Flow:           "resamania.register",
			Tenant:         "acme",
			Status:         store.StatusRunning,
			Data:           []byte(`not json`),
		},
	}
	err = st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, f := range flows {
			if err := tx.CreateFlow(ctx, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// want is the JSON of handlers.StatusOf for the stored flow.
	want := func(t *testing.T, id string) any {
		t.Helper()
		f, err := st.Flow(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := handlers.StatusOf(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	tests := []struct {
		name     string
		flows    admin.FlowReader
		id       string
		wantCode int
		wantBody bool   // the body is StatusOf of flow id
		wantErr  string // the body's "error"
	}{
		{name: "known", flows: st, id: "reg-1", wantCode: http.StatusOK, wantBody: true},
		{name: "known, waiting with history", flows: st, id: "reg-waiting", wantCode: http.StatusOK, wantBody: true},
		{name: "unknown", flows: st, id: "reg-nope", wantCode: http.StatusNotFound, wantErr: "no flow has this registrationId"},
		{name: "unreadable data", flows: st, id: "reg-corrupt", wantCode: http.StatusInternalServerError},
		{name: "store fails", flows: fakeFlows{err: errors.New("database is locked")}, id: "reg-1", wantCode: http.StatusServiceUnavailable, wantErr: "store unavailable"},
		{name: "store fails with not found", flows: fakeFlows{err: store.ErrNotFound}, id: "reg-1", wantCode: http.StatusNotFound},
		{name: "no store", id: "reg-1", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newServer(t, admin.Config{Flows: tt.flows})
			code, body, _ := get(t, hs.URL, "/v1/registrations/"+tt.id)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d; body %s", code, tt.wantCode, body)
			}
			// The status API never shows the command (it may hold secrets),
			// nor does an error about a flow.
			if strings.Contains(body, "hunter2") || strings.Contains(body, "command") {
				t.Errorf("the body shows the command:\n%s", body)
			}
			var got any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if tt.wantBody {
				if w := want(t, tt.id); !reflect.DeepEqual(got, w) {
					t.Errorf("body\n%v\nwant\n%v", got, w)
				}
			}
			if tt.wantErr != "" {
				m, _ := got.(map[string]any)
				if m["error"] != tt.wantErr {
					t.Errorf("error %v, want %q", m["error"], tt.wantErr)
				}
			}
		})
	}

	t.Run("waiting list", func(t *testing.T) {
		hs := newServer(t, admin.Config{Flows: st})
		for _, tt := range []struct {
			query    string
			wantCode int
			wantIDs  []string
		}{
			{"?waiting=otp", http.StatusOK, []string{"reg-waiting"}},
			{"", http.StatusOK, []string{"reg-waiting"}},
			{"?waiting=activation", http.StatusOK, nil},
			{"?limit=0", http.StatusBadRequest, nil},
			{"?status=completed", http.StatusBadRequest, nil},
		} {
			code, body, _ := get(t, hs.URL, "/v1/registrations"+tt.query)
			if code != tt.wantCode {
				t.Errorf("%s: status %d, want %d: %s", tt.query, code, tt.wantCode, body)
				continue
			}
			if strings.Contains(body, "hunter2") {
				t.Errorf("%s shows the command: %s", tt.query, body)
			}
			if code != http.StatusOK {
				continue
			}
			var got struct {
				Registrations []handlers.FlowStatus `json:"registrations"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got.Registrations {
				ids = append(ids, r.RegistrationID)
			}
			if !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("%s: %v, want %v", tt.query, ids, tt.wantIDs)
			}
		}
	})
}
