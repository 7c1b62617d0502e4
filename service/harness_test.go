package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// env is one service under test with its simulators, all in-process over a
// real (embedded) NATS server and a real SQLite store.
type env struct {
	t      *testing.T
	svc    *service.Service
	sims   *simulators.Set
	nc     *nats.Conn
	js     jetstream.JetStream
	events *collector
	dlq    *collector

	cfg          *config.Config
	log          *slog.Logger
	logs         *syncBuffer
	martaSim     *marta.SimConfig
	csSim        *cloudsuite.SimConfig
	pollInterval time.Duration // of tenant acme's CloudSuite origin
	account      resamania.SimAccount
	strict       resamania.SimAccount
	club, node   string
	sclub, snode string
	cancel       context.CancelFunc
	runErr       chan error
}

type envOption func(*env, *config.Config, *resamania.SimConfig)

// withLogs sends the service's logs, JSON at debug level, to w.
func withLogs(w io.Writer) envOption {
	return func(e *env, _ *config.Config, _ *resamania.SimConfig) {
		e.log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// withStore runs the service on the store at dsn instead of the embedded
// SQLite database.
func withStore(dsn string) envOption {
	return func(_ *env, c *config.Config, _ *resamania.SimConfig) { c.Store.DSN = dsn }
}

// withMartaSim changes the MARTA simulator's configuration.
func withMartaSim(change func(*marta.SimConfig)) envOption {
	return func(e *env, _ *config.Config, _ *resamania.SimConfig) {
		mc := marta.DefaultSimConfig()
		change(&mc)
		e.martaSim = &mc
	}
}

// withCloudSuitePageSize makes the CloudSuite simulator answer pages of n
// users.
func withCloudSuitePageSize(n int) envOption {
	return func(e *env, _ *config.Config, _ *resamania.SimConfig) { e.csSim.PageSize = n }
}

// withOTP sets the one-time code bounds.
func withOTP(ttl, resendInterval time.Duration) envOption {
	return func(_ *env, c *config.Config, _ *resamania.SimConfig) {
		c.Processing.OTP.TTL = ttl
		c.Processing.OTP.ResendInterval = resendInterval
	}
}

func withRetryBudget(d time.Duration) envOption {
	return func(_ *env, c *config.Config, _ *resamania.SimConfig) {
		c.Processing.Retry.InitialInterval = 10 * time.Millisecond
		c.Processing.Retry.MaxInterval = 50 * time.Millisecond
		c.Processing.Retry.MaxElapsedTime = d
		// Work parked behind an open circuit is dead-lettered as soon as
		// it comes back.
		c.Processing.Breaker.MaxPark = d
	}
}

// testLogger logs at debug level as JSON into buf (scanned for secrets when
// the test ends), and as text to stderr with REGISTRAR_TEST_LOGS set.
func testLogger(buf io.Writer) *slog.Logger {
	var w io.Writer = buf
	if os.Getenv("REGISTRAR_TEST_LOGS") != "" {
		w = io.MultiWriter(buf, os.Stderr)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// simConfig is the simulators' configuration for tests: the default
// account (tenant "acme") and a strict one (tenant "strict") whose clubs
// also require a mobile number; no rate limits.
func simConfig() resamania.SimConfig {
	sc := resamania.DefaultSimConfig()
	sc.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	strict := sc.Accounts[0]
	strict.ClientToken = "strictapi"
	strict.ClientID, strict.ClientSecret, strict.APIKey = "strict-client", "strict-secret", "strict-api-key"
	strict.RequiredFields = []string{"email", "familyName", "givenName", "birthDate", "mobile"}
	sc.Accounts = append(sc.Accounts, strict)
	return sc
}

// testConfig is the tests' base configuration: embedded everything in a
// temporary directory, quick retries.
func testConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.UseDataDir(t.TempDir())
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	cfg.Processing.Retry.InitialInterval = 10 * time.Millisecond
	cfg.Processing.Retry.MaxInterval = 100 * time.Millisecond
	return cfg
}

// addTenants points tenants "acme" and "strict" at the simulators'
// accounts.
func addTenants(t *testing.T, cfg *config.Config, sims *simulators.Set, sc resamania.SimConfig) {
	acme, err := sims.ResamaniaTenant(sc.Accounts[0].ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := sims.ResamaniaTenant(sc.Accounts[1].ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tenants = map[string]config.Tenant{"acme": {Resamania: acme, Marta: sims.MartaTenant(), Engage: sims.EngageTenant()}, "strict": {Resamania: strict}}
}

func startEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	sc := simConfig()
	cfg := testConfig(t)
	logs := &syncBuffer{}
	csSim := cloudsuite.DefaultSimConfig()
	// DEMO is tenant acme's; SHOP is left to tests that configure it.
	csSim.Origins = []string{cloudsuite.DemoOrigin, "SHOP"}
	e0 := &env{log: testLogger(logs), logs: logs, csSim: &csSim, pollInterval: 30 * time.Second}
	for _, o := range opts {
		o(e0, cfg, &sc)
	}
	sims, err := simulators.Start(simulators.Config{Resamania: &sc, Marta: e0.martaSim, CloudSuite: e0.csSim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	addTenants(t, cfg, sims, sc)
	acme := cfg.Tenants["acme"]
	acme.CloudSuite = sims.CloudSuiteTenant(e0.pollInterval)
	cfg.Tenants["acme"] = acme
	e := &env{t: t, sims: sims, cfg: cfg, log: e0.log, logs: logs, martaSim: e0.martaSim, csSim: e0.csSim, pollInterval: e0.pollInterval,
		account: sc.Accounts[0], strict: sc.Accounts[1]}
	e.club = resamania.ClubIRI(e.account.ClientToken, e.account.Clubs[0].ID)
	e.node = resamania.NetworkNodeIRI(e.account.ClientToken, e.account.Clubs[0].NetworkNodeID)
	e.sclub = resamania.ClubIRI(e.strict.ClientToken, e.strict.Clubs[0].ID)
	e.snode = resamania.NetworkNodeIRI(e.strict.ClientToken, e.strict.Clubs[0].NetworkNodeID)
	e.start()
	// Every end-to-end test is also a leak test: when it ends, its logs,
	// events, dead letters, metrics and status answers must hold no secret.
	t.Cleanup(e.scanForSecrets)
	return e
}

// start starts the service on e.cfg and connects a client to it.
func (e *env) start() {
	t := e.t
	t.Helper()
	svc, err := service.New(t.Context(), service.Options{Config: e.cfg, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.runErr = make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.runErr <- svc.Run(ctx) }()
	t.Cleanup(e.stop)
	select {
	case <-svc.Running():
	case err := <-e.runErr:
		t.Fatalf("service stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("service not running after 10s")
	}
	e.nc, err = nats.Connect(svc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.nc.Close)
	e.js, err = jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	e.events = collect(t, e.js, svc.Topology().Events)
	e.dlq = collect(t, e.js, svc.Topology().DeadLetters)
}

// restart stops the service and starts a new one on the same data
// directory: the same embedded NATS store and SQLite database.
func (e *env) restart() {
	e.t.Helper()
	e.nc.Close()
	e.stop()
	e.start()
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	defer e.svc.Close()
	select {
	case err := <-e.runErr:
		if err != nil {
			e.t.Errorf("service run: %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Error("service did not stop in 30s")
	}
}

// publish publishes a command body on the command subject of cmdType with
// the given Nats-Msg-Id (a new one if empty).
func publish(t *testing.T, js jetstream.JetStream, subject, msgID string, body []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = body
	if msgID == "" {
		msgID = fmt.Sprintf("test-%d", time.Now().UnixNano())
	}
	m.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

// registerIn is a register command for the n-th club of the default
// account; top holds more top-level fields (`"saleId":"33",`).
func (e *env) registerIn(n int, id, email, top string) []byte {
	c := e.account.Clubs[n]
	return []byte(fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","clubId":%q,"networkNodeId":%q,%s
		"contact":{"email":%q,"givenName":"Justine","familyName":"Doe","birthDate":"1992-04-22"}}`,
		id, resamania.ClubIRI(e.account.ClientToken, c.ID), resamania.NetworkNodeIRI(e.account.ClientToken, c.NetworkNodeID), top, email))
}

func (e *env) register(id, tenant, email, extra string) []byte {
	club, node := e.club, e.node
	if tenant == "strict" {
		club, node = e.sclub, e.snode
	}
	return []byte(fmt.Sprintf(`{"registrationId":%q,"tenant":%q,"clubId":%q,"networkNodeId":%q,
		"contact":{"email":%q,"givenName":"Ada","familyName":"Lovelace","birthDate":"1995-12-10"%s}}`,
		id, tenant, club, node, email, extra))
}

var registerSubject = events.CommandSubject(events.CmdResamaniaRegister)

// received is one message read from a stream.
type received struct {
	Subject string
	Header  nats.Header
	Data    []byte
	Event   struct {
		events.Envelope
		Error   *events.ErrorInfo        `json:"error"`
		Errors  []events.FieldError      `json:"errors"`
		Result  map[string]any           `json:"result"`
		Contact *events.ResamaniaContact `json:"contact"`
	}
}

// collector reads a whole stream with an ordered consumer.
type collector struct {
	mu      sync.Mutex
	msgs    []received
	changed chan struct{}
}

func collect(t *testing.T, js jetstream.JetStream, stream string) *collector {
	t.Helper()
	c := &collector{changed: make(chan struct{}, 1)}
	cons, err := js.OrderedConsumer(t.Context(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		r := received{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
		_ = json.Unmarshal(m.Data(), &r.Event)
		c.mu.Lock()
		c.msgs = append(c.msgs, r)
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

func (c *collector) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.msgs...)
}

// of returns the events of one registration, in order.
func (c *collector) of(id string) []received {
	var out []received
	for _, r := range c.all() {
		if r.Event.RegistrationID == id {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until cond holds on the collected messages.
func (c *collector) waitFor(t *testing.T, what string, timeout time.Duration, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		msgs := c.all()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-c.changed:
		case <-deadline:
			var seen []string
			for _, m := range msgs {
				seen = append(seen, m.Subject+" "+m.Event.RegistrationID)
			}
			t.Fatalf("timed out waiting for %s; seen: %s", what, strings.Join(seen, ", "))
		}
	}
}

func isTerminal(typ string) bool { return typ == "completed" || typ == "failed" || typ == "rejected" }

// terminal waits for the registration's terminal event and returns all its
// events.
func (e *env) terminal(id string) []received {
	e.t.Helper()
	e.events.waitFor(e.t, "terminal event of "+id, 20*time.Second, func([]received) bool {
		for _, r := range e.events.of(id) {
			if isTerminal(r.Event.Type) {
				return true
			}
		}
		return false
	})
	return e.events.of(id)
}

func types(rs []received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Event.Type
	}
	return out
}

// contactCreations counts successful POST /contacts at the simulator.
func (e *env) contactCreations() int {
	return e.sims.Resamania.CountResponses("POST", "/contacts", 201)
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
