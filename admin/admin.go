// Package admin serves registrar's operator endpoints on their own listener:
// /healthz (the process is alive), /readyz (NATS, the store and the
// consumers answer), /metrics (Prometheus, from the service's own registry)
// and /v1/registrations/{id} (a flow's status).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/store"
)

// Check is one readiness check; it returns nil when the dependency answers.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// FlowReader reads a flow by registrationId, and the waiting flows.
type FlowReader interface {
	Flow(ctx context.Context, registrationID string) (store.Flow, error)
	WaitingFlows(ctx context.Context, waitingFor string, limit int) ([]store.Flow, error)
}

// Config configures the admin server.
type Config struct {
	Listen   string // host:port; default 127.0.0.1:9090
	Gatherer prometheus.Gatherer
	Checks   []Check
	// Details are shown by /readyz under "details" without deciding
	// readiness (the vendors' circuit breakers: a vendor being down does
	// not make registrar unready, the other vendors keep flowing).
	Details map[string]func() any
	Flows   FlowReader
	Logger  *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	cfg  Config
	srv  *http.Server
	ln   net.Listener
	mux  *http.ServeMux
	addr string
}

// New listens on cfg.Listen (so Addr is known before Run) and returns the
// server.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9090"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Gatherer == nil {
		return nil, errors.New("admin: Gatherer is required")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, ln: ln, mux: http.NewServeMux(), addr: ln.Addr().String()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	s.mux.HandleFunc("GET /v1/registrations/{id}", s.registration)
	s.mux.HandleFunc("GET /v1/registrations", s.waiting)
	s.srv = &http.Server{
		Handler:           http.MaxBytesHandler(s.mux, 1<<20),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Handler is the server's handler (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status := http.StatusOK
	detail := make(map[string]string, len(s.cfg.Checks))
	for _, c := range s.cfg.Checks {
		if err := c.Check(ctx); err != nil {
			status = http.StatusServiceUnavailable
			detail[c.Name] = err.Error()
		} else {
			detail[c.Name] = "ok"
		}
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	body := map[string]any{"status": state, "checks": detail}
	if len(s.cfg.Details) > 0 {
		details := make(map[string]any, len(s.cfg.Details))
		for name, f := range s.cfg.Details {
			details[name] = f()
		}
		body["details"] = details
	}
	writeJSON(w, status, body)
}

func (s *Server) registration(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Flows == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no store"})
		return
	}
	id := r.PathValue("id")
	f, err := s.cfg.Flows.Flow(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no flow has this registrationId"})
		return
	}
	if err != nil {
		s.cfg.Logger.Warn("status: read flow", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
		return
	}
	st, err := handlers.StatusOf(f)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// waiting lists the waiting flows: ?waiting=otp|activation (default: any),
// ?limit= (default 100, at most 1000), longest waiting first.
func (s *Server) waiting(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Flows == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no store"})
		return
	}
	q := r.URL.Query()
	if q.Get("status") != "" && q.Get("status") != string(store.StatusWaiting) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "only status=waiting is listed"})
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit must be 1 to 1000"})
			return
		}
		limit = n
	}
	flows, err := s.cfg.Flows.WaitingFlows(r.Context(), q.Get("waiting"), limit)
	if err != nil {
		s.cfg.Logger.Warn("status: list waiting flows", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
		return
	}
	out := make([]handlers.FlowStatus, 0, len(flows))
	for _, f := range flows {
		st, err := handlers.StatusOf(f)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"registrations": out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
