// Package service assembles registrar from its parts — NATS (external or
// embedded), the store, the Watermill router with the intake and step
// handlers, the outbox forwarder and the admin server — and runs them under
// one supervisor. `registrar serve`, `registrar demo`, the benchmarks and
// the end-to-end tests all build the service here, so they run the same
// thing.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/registrar-dev/registrar/admin"
	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/stores"
	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/engage"
	"github.com/registrar-dev/registrar/vendors/guard"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Options are what the service needs besides its configuration.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Registry receives every metric; nil creates one. Never the global
	// registry.
	Registry *prometheus.Registry
	// HTTPClient makes the vendor calls; nil builds one with
	// processing.vendorTimeout.
	HTTPClient *http.Client
	// FaultHook is handed to the outbox forwarder (tests, crash drills).
	FaultHook func(point string, recs []outbox.Record)
	// NoPollers leaves the CloudSuite pollers out (tools that build a
	// service only to process messages).
	NoPollers bool
	// EmbeddedListen is the embedded NATS server's host:port when
	// nats.url is empty; default nats.listen from the configuration.
	EmbeddedListen string
}

// Service is a running registrar.
type Service struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry

	embedded *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	store    store.Store

	router    *message.Router
	forwarder *outbox.Forwarder
	deadlines *handlers.Deadlines
	pollers   []*handlers.CloudSuitePoller
	guards    []*guard.Guard
	admin     *admin.Server
	topology  transport.Topology
	consumers []transport.ConsumerSpec
}

// New connects to NATS (starting the embedded server when nats.url is
// empty), opens the store, creates the streams and consumers that are
// missing and builds the handlers. Run starts processing.
func New(ctx context.Context, opts Options) (_ *Service, err error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("service: Config is required")
	}
	s := &Service{cfg: cfg, log: opts.Logger, registry: opts.Registry}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = "registrar-data"
	}

	// NATS.
	url := cfg.NATS.URL
	if url == "" {
		dir := cfg.NATS.StoreDir
		if dir == "" {
			dir = filepath.Join(dataDir, "nats")
		}
		listen := opts.EmbeddedListen
		if listen == "" {
			listen = cfg.NATS.Listen
		}
		s.embedded, err = transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: dir, Listen: listen})
		if err != nil {
			return nil, err
		}
		url = s.embedded.ClientURL()
		s.log.Info("embedded NATS JetStream server started", "url", url, "storeDir", dir)
	}
	s.nc, err = transport.Connect(transport.ConnConfig{
		URL: url, Name: "registrar", Credentials: cfg.NATS.Credentials, NKeySeed: cfg.NATS.NKey,
		TLSCA: cfg.NATS.TLS.CA, TLSCert: cfg.NATS.TLS.Cert, TLSKey: cfg.NATS.TLS.Key,
	}, s.log)
	if err != nil {
		return nil, err
	}
	s.js, err = jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}

	// Store.
	dsn := cfg.Store.DSN
	if dsn == "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		dsn = "sqlite://" + filepath.Join(dataDir, "registrar.db")
	}
	s.store, err = stores.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}

	// Streams and consumers.
	st := cfg.NATS.Streams
	s.topology = transport.Topology{Commands: st.Commands, Events: st.Events, DeadLetters: st.DeadLetters, Steps: st.Steps,
		Replicas: st.Replicas, DuplicateWindow: st.DuplicateWindow}.WithDefaults()
	if err := s.provision(ctx, "streams", func(ctx context.Context) error { return transport.ProvisionStreams(ctx, s.js, s.topology) }); err != nil {
		return nil, err
	}

	// Vendors.
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: cfg.Processing.VendorTimeout, Transport: vendorTransport()}
	}
	// A circuit breaker (and, where configured, a throttle) per (tenant,
	// vendor), shared by every handler of the process.
	gm, err := guard.NewMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	bc := cfg.Processing.Breaker
	guarded := func(tenant, vendor string, rl config.RateLimit) *http.Client {
		g := guard.New(guard.Config{Tenant: tenant, Vendor: vendor, Threshold: bc.Threshold, OpenFor: bc.OpenFor, MaxOpenFor: bc.MaxOpenFor,
			PerSecond: float64(max(rl.PerMinute, 0)) / 60, Burst: max(rl.SpikeArrest, 1), Metrics: gm})
		s.guards = append(s.guards, g)
		return g.Client(httpClient)
	}
	resamaniaClients := make(map[string]*resamania.Client)
	// One rate limiter per API key, shared by the tenants that use it.
	limiters := make(map[string]*resamania.RateLimiter)
	for name, t := range cfg.Tenants {
		if t.Resamania == nil {
			continue
		}
		lim, ok := limiters[t.Resamania.APIKey.Reveal()]
		if !ok {
			lim = resamania.NewRateLimiter(resamania.RateLimiterConfig{PerMinute: t.Resamania.RateLimit.PerMinute, SpikeArrest: t.Resamania.RateLimit.SpikeArrest})
			limiters[t.Resamania.APIKey.Reveal()] = lim
		}
		c, err := resamania.NewClient(resamania.Config{
			BaseURL: t.Resamania.BaseURL, ClientToken: t.Resamania.ClientToken, ClientID: t.Resamania.ClientID,
			ClientSecret: t.Resamania.ClientSecret, APIKey: t.Resamania.APIKey,
		}, resamania.WithHTTPClient(guarded(name, events.VendorResamania, config.RateLimit{})), resamania.WithRateLimiter(lim))
		if err != nil {
			return nil, fmt.Errorf("tenants.%s.resamania: %w", name, err)
		}
		resamaniaClients[name] = c
	}
	resamaniaClient := clientOf(events.VendorResamania, resamaniaClients)
	resamaniaFor := func(tenant string) (handlers.ResamaniaAPI, error) { return resamaniaClient(tenant) }
	resamaniaTransferFor := func(tenant string) (handlers.ResamaniaTransferAPI, error) { return resamaniaClient(tenant) }
	resamaniaMigrationFor := func(tenant string) (handlers.ResamaniaMigrationAPI, error) {
		c, err := resamaniaClient(tenant)
		if err != nil {
			return nil, err
		}
		return resamaniaMigrationClient{c}, nil
	}

	martaClients := make(map[string]*marta.Client)
	for name, t := range cfg.Tenants {
		if t.Marta == nil {
			continue
		}
		c, err := marta.NewClient(marta.Config{BaseURL: t.Marta.BaseURL, APIKey: t.Marta.APIKey},
			marta.WithHTTPClient(guarded(name, events.VendorMarta, t.Marta.RateLimit)))
		if err != nil {
			return nil, fmt.Errorf("tenants.%s.marta: %w", name, err)
		}
		martaClients[name] = c
	}
	martaClient := clientOf(events.VendorMarta, martaClients)
	martaFor := func(tenant string) (handlers.MartaAPI, error) { return martaClient(tenant) }

	engageClients := make(map[string]*engage.Client)
	for name, t := range cfg.Tenants {
		if t.Engage == nil {
			continue
		}
		c, err := engage.NewClient(engage.Config{BaseURL: t.Engage.BaseURL, Username: t.Engage.Username, Password: t.Engage.Password},
			engage.WithHTTPClient(guarded(name, events.VendorEngage, t.Engage.RateLimit)))
		if err != nil {
			return nil, fmt.Errorf("tenants.%s.engage: %w", name, err)
		}
		engageClients[name] = c
	}
	engageClient := clientOf(events.VendorEngage, engageClients)
	engageFor := func(tenant string) (handlers.EngageAPI, error) { return engageClient(tenant) }

	cloudsuiteClients := make(map[string]*cloudsuite.Client)
	for name, t := range cfg.Tenants {
		if t.CloudSuite == nil {
			continue
		}
		cs := t.CloudSuite
		c, err := cloudsuite.NewClient(cloudsuite.Config{BaseURL: cs.BaseURL, TokenURL: cs.TokenURL, ClientID: cs.ClientID,
			ClientSecret: cs.ClientSecret, Origin: cs.Origin}, cloudsuite.WithHTTPClient(guarded(name, events.VendorCloudSuite, cs.RateLimit)))
		if err != nil {
			return nil, fmt.Errorf("tenants.%s.cloudsuite: %w", name, err)
		}
		cloudsuiteClients[name] = c
	}
	cloudsuiteClient := clientOf(events.VendorCloudSuite, cloudsuiteClients)
	cloudsuiteFor := func(tenant string) (handlers.CloudSuiteAPI, error) { return cloudsuiteClient(tenant) }

	// The key that seals the secrets flows keep.
	key, err := dataKey(cfg, dataDir)
	if err != nil {
		return nil, err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, err
	}

	// Metrics.
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hm, err := handlers.NewMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	if err := s.registerStoreMetrics(); err != nil {
		return nil, err
	}
	if err := registerBuildInfo(s.registry); err != nil {
		return nil, fmt.Errorf("register build info: %w", err)
	}

	// Outbox forwarder.
	holder := instanceID()
	s.forwarder, err = outbox.NewForwarder(outbox.Config{
		Source: s.store, Publisher: s.js, Leaser: s.store, Holder: holder,
		FaultHook: opts.FaultHook, Registerer: s.registry, Logger: s.log.With("component", "outbox"),
	})
	if err != nil {
		return nil, err
	}

	// Handlers.
	p := cfg.Processing
	rt := &handlers.Runtime{
		Store:  s.store,
		Notify: s.forwarder.Notify,
		Retry: handlers.RetryPolicy{InitialInterval: p.Retry.InitialInterval, MaxInterval: p.Retry.MaxInterval,
			Multiplier: p.Retry.Multiplier, MaxElapsedTime: p.Retry.MaxElapsedTime},
		Logger:  s.log.With("component", "handlers"),
		Metrics: hm,
		Box:     box,
		MaxPark: p.Breaker.MaxPark,
	}
	otpCfg := handlers.OTPConfig{TTL: p.OTP.TTL, Attempts: p.OTP.Attempts, MaxResends: p.OTP.MaxResends, ResendInterval: p.OTP.ResendInterval}
	transfer := handlers.NewResamaniaTransfer(resamaniaTransferFor, otpCfg)
	signup := handlers.NewMartaSignup(martaFor, otpCfg)
	otp := handlers.NewOTP(rt, cfg, map[string]handlers.OTPVendor{
		handlers.StepResamaniaTransferCode: transfer,
		handlers.StepMartaRegister:         signup,
	}, otpCfg)
	s.deadlines = handlers.NewDeadlines(rt, time.Second)
	steps := []handlers.Step{
		handlers.NewResamaniaLookup(resamaniaFor).Step(),
		handlers.NewResamaniaCreate(resamaniaFor).Step(),
		transfer.RequestStep(),
		otp.ExpireStep(),
	}
	steps = append(steps, handlers.NewResamaniaMigration(resamaniaMigrationFor).Steps()...)
	steps = append(steps, signup.Steps()...)
	steps = append(steps, handlers.NewEngageUpsert(engageFor).Steps()...)
	steps = append(steps, handlers.NewCloudSuiteActivation(cloudsuiteFor).Step())
	starts := map[string]string{
		events.CmdResamaniaRegister:  handlers.StepResamaniaLookup,
		events.CmdResamaniaTransfer:  handlers.StepResamaniaTransferRequest,
		events.CmdResamaniaMigrate:   handlers.StepResamaniaMigrateContact,
		events.CmdMartaSignup:        handlers.StepMartaCheck,
		events.CmdEngageUpsert:       handlers.StepEngageLookup,
		events.CmdCloudSuiteActivate: handlers.StepCloudSuiteActivate,
	}
	intake := handlers.NewIntake(rt, cfg, starts)

	// CloudSuite pushes nothing: a poller per tenant's origin.
	pm, err := handlers.NewPollerMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	for name, c := range cloudsuiteClients {
		if opts.NoPollers {
			break
		}
		s.pollers = append(s.pollers, handlers.NewCloudSuitePoller(rt, handlers.CloudSuitePollerConfig{
			Tenant: name, API: c, Interval: cfg.Tenants[name].CloudSuite.PollInterval, Holder: holder, Metrics: pm}))
	}

	s.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second},
		watermill.NewSlogLoggerWithLevelMapping(s.log.With("component", "watermill"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	mb := wmetrics.NewPrometheusMetricsBuilder(s.registry, "registrar", "router")
	// Vendor calls with retries take seconds: the default buckets stop at 1s.
	mb.HandlerBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	mb.AddPrometheusRouterMetrics(s.router)

	newSub := func(stream string) (*transport.Subscriber, error) {
		return transport.NewSubscriber(transport.SubscriberConfig{JetStream: s.js, Stream: stream, InFlight: p.InFlight,
			Logger: s.log.With("component", "subscriber", "stream", stream)})
	}
	cmdSub, err := newSub(s.topology.Commands)
	if err != nil {
		return nil, err
	}
	stepSub, err := newSub(s.topology.Steps)
	if err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, transport.ConsumerSpec{Stream: s.topology.Commands, Durable: handlers.IntakeName,
		FilterSubject: transport.CommandSubjects, MaxAckPending: p.InFlight, AckWait: p.AckWait})
	s.router.AddConsumerHandler(handlers.IntakeName, handlers.IntakeName, cmdSub, intake.Handle)
	s.consumers = append(s.consumers, transport.ConsumerSpec{Stream: s.topology.Commands, Durable: handlers.OTPName,
		FilterSubjects: []string{events.CommandSubject("otp.>"), events.CommandSubject(events.CmdCancel)},
		MaxAckPending:  p.InFlight, AckWait: p.AckWait})
	s.router.AddConsumerHandler(handlers.OTPName, handlers.OTPName, cmdSub, otp.Handle)
	for _, step := range steps {
		name := handlers.ConsumerName(step.Name)
		s.consumers = append(s.consumers, transport.ConsumerSpec{Stream: s.topology.Steps, Durable: name,
			FilterSubject: handlers.StepSubject(step.Name), MaxAckPending: p.InFlight, AckWait: p.AckWait})
		s.router.AddConsumerHandler(name, name, stepSub, rt.StepHandler(step))
	}
	for _, c := range s.consumers {
		err := s.provision(ctx, "consumer "+c.Durable, func(ctx context.Context) error {
			_, err := transport.ProvisionConsumer(ctx, s.js, c)
			return err
		})
		if err != nil {
			return nil, err
		}
	}

	// Admin.
	s.admin, err = admin.New(admin.Config{
		Listen: cfg.Admin.Listen, Gatherer: s.registry, Flows: s.store, Logger: s.log.With("component", "admin"),
		Checks: []admin.Check{
			{Name: "nats", Check: s.checkNATS},
			{Name: "store", Check: s.store.Ping},
			{Name: "consumers", Check: s.checkConsumers},
		},
		Details: map[string]func() any{"circuits": s.circuits},
	})
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", cfg.Admin.Listen, err)
	}
	return s, nil
}

// provisionBudget bounds how long start-up waits for JetStream to create
// or confirm the streams and consumers: a cluster electing a stream leader
// (after a node died) or another instance creating the same streams makes
// the first attempts time out.
const provisionBudget = 2 * time.Minute

// provision runs fn until it succeeds, backing off, for up to
// provisionBudget.
func (s *Service) provision(ctx context.Context, what string, fn func(context.Context) error) error {
	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(provisionBudget)), ctx)
	return backoff.RetryNotify(func() error {
		err := fn(ctx)
		if err != nil && !transientJetStream(err) {
			return backoff.Permanent(err) // a configuration problem: say it now
		}
		return err
	}, b, func(err error, d time.Duration) {
		s.log.Warn("JetStream not ready; retrying", "what", what, "err", err, "retryIn", d.Round(time.Millisecond))
	})
}

// transientJetStream reports whether a JetStream API error may go away by
// itself: a timeout, no responder yet, or the cluster temporarily
// unavailable (503).
func transientJetStream(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	return false
}

// Run processes messages until ctx is done, then stops the router (waiting
// for the messages in hand), the forwarder and the admin server.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	// The forwarder outlives the router by design: handlers finishing
	// during shutdown commit outbox rows, and the forwarder is still there
	// to publish them.
	fwdCtx, stopForwarder := context.WithCancel(context.WithoutCancel(ctx))
	defer stopForwarder()
	g.Go(func() error { return s.admin.Run(ctx) })
	g.Go(func() error { return s.forwarder.Run(fwdCtx) })
	g.Go(func() error { return s.deadlines.Run(ctx) })
	for _, p := range s.pollers {
		g.Go(func() error { return p.Run(ctx) })
	}
	g.Go(func() error {
		// The router gets a context that is never cancelled: it stops on
		// Close, which closes the subscribers and waits up to its
		// CloseTimeout for the messages in hand, so a shutdown lets the
		// handlers finish and commit instead of abandoning them.
		if err := s.router.Run(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("router: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		err := s.router.Close()
		// The forwarder publishes what it can of the rows the last
		// handlers committed before it stops (see outbox.Forwarder.Run).
		stopForwarder()
		return err
	})
	s.log.Info("registrar running", "admin", s.admin.Addr(), "inFlight", s.cfg.Processing.InFlight)
	return g.Wait()
}

// Running is closed once the router's handlers are subscribed.
func (s *Service) Running() <-chan struct{} { return s.router.Running() }

// Close releases NATS, the store and the embedded server. Call it after Run
// returned (or when Run was never called).
func (s *Service) Close() {
	if s.nc != nil {
		_ = s.nc.Drain()
		// Drain is asynchronous; wait for it so the embedded server sees a
		// clean disconnect.
		for i := 0; i < 100 && !s.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		s.nc.Close()
	}
	if s.store != nil {
		_ = s.store.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
	}
}

// NATSURL is the URL of the NATS server the service uses (the embedded
// server's when it runs one).
func (s *Service) NATSURL() string { return s.nc.ConnectedUrl() }

// AdminAddr is the admin server's address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

// Store is the service's store.
func (s *Service) Store() store.Store { return s.store }

// Topology is the stream names in use.
func (s *Service) Topology() transport.Topology { return s.topology }

// Registry is the service's metrics registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

func (s *Service) checkNATS(context.Context) error {
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("connection %s", st)
	}
	return nil
}

// circuits describes the vendors' circuit breakers for /readyz:
// "<tenant>/<vendor>": "closed", "half-open" or "open until <time>".
func (s *Service) circuits() any {
	out := make(map[string]string, len(s.guards))
	for _, g := range s.guards {
		st, until := g.State()
		v := st.String()
		if st == guard.Open {
			v += " until " + until.UTC().Format(time.RFC3339)
		}
		out[g.Tenant()+"/"+g.Vendor()] = v
	}
	return out
}

func (s *Service) checkConsumers(ctx context.Context) error {
	if !s.router.IsRunning() {
		return errors.New("router not running")
	}
	for _, c := range s.consumers {
		if _, err := s.js.Consumer(ctx, c.Stream, c.Durable); err != nil {
			return fmt.Errorf("consumer %s: %w", c.Durable, err)
		}
	}
	return nil
}

func (s *Service) registerStoreMetrics() error {
	if err := s.registry.Register(&outboxCollector{store: s.store}); err != nil {
		return fmt.Errorf("register store metrics: %w", err)
	}
	return nil
}

var (
	outboxPendingDesc = prometheus.NewDesc("registrar_outbox_pending",
		"Outbox messages waiting to be published (-1 when the store does not answer).", nil, nil)
	outboxOldestDesc = prometheus.NewDesc("registrar_outbox_oldest_age_seconds",
		"Age of the oldest outbox message waiting to be published (0 when none waits).", nil, nil)
	waitingDesc = prometheus.NewDesc("registrar_flows_waiting",
		"Flows waiting for an outside input, by what they wait for (otp: a one-time code; activation: a CloudSuite review).",
		[]string{"waiting_for"}, nil)
)

// waitingKinds are always reported, at 0 when no flow waits for them.
var waitingKinds = []string{handlers.WaitingForOTP, handlers.WaitingForActivation}

// outboxCollector reports the outbox backlog and the waiting flows from
// two store queries per scrape.
type outboxCollector struct{ store store.Store }

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxOldestDesc
	ch <- waitingDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, oldest, err := c.store.OutboxStats(ctx)
	age := 0.0
	switch {
	case err != nil:
		pending = -1
	case !oldest.IsZero():
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(outboxOldestDesc, prometheus.GaugeValue, age)
	counts, err := c.store.WaitingCounts(ctx)
	if err != nil {
		return // no sample rather than a wrong one
	}
	for _, k := range waitingKinds {
		if _, ok := counts[k]; !ok {
			counts[k] = 0
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(n), k)
	}
}

// registerBuildInfo exports registrar_build_info: the version and VCS
// revision of the binary, and its Go version.
func registerBuildInfo(reg prometheus.Registerer) error {
	version, revision := "(devel)", "unknown"
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" {
				revision = st.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "registrar", Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion}})
	g.Set(1)
	return reg.Register(g)
}

// vendorTransport is an HTTP transport sized for hundreds of concurrent
// vendor calls to few hosts.
func vendorTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	return t
}

func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// KillAt returns an outbox fault hook that kills this process with SIGKILL
// at the given point of the first forwarder round that carries an event.
// It is for crash drills: `registrar serve` arms it from
// REGISTRAR_FAULT_KILL_AT.
func KillAt(point string) func(string, []outbox.Record) {
	return func(p string, recs []outbox.Record) {
		if p != point {
			return
		}
		for _, r := range recs {
			if strings.HasPrefix(r.Subject, events.EventSubjectPrefix) {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
}

// dataKey is the configured data key, or the one kept in the data
// directory (created on first use).
func dataKey(cfg *config.Config, dataDir string) ([]byte, error) {
	if !cfg.DataKey.IsZero() {
		return secret.DecodeKey(cfg.DataKey)
	}
	return secret.LoadOrCreateKey(filepath.Join(dataDir, "data.key"))
}

// clientOf looks up a tenant's client of vendor; a tenant without an
// account of that vendor is an error.
func clientOf[C any](vendor string, clients map[string]C) func(tenant string) (C, error) {
	return func(tenant string) (C, error) {
		c, ok := clients[tenant]
		if !ok {
			var none C
			return none, fmt.Errorf("tenant %q has no %s account", tenant, vendor)
		}
		return c, nil
	}
}

// resamaniaMigrationClient adds the migration call made as the source
// contact to a Resamania client.
type resamaniaMigrationClient struct{ *resamania.Client }

func (c resamaniaMigrationClient) MigrateContactAs(ctx context.Context, sourceEmail string, s resamania.Scope, sourceContactID, targetContactID, targetClubID string) error {
	return c.As(resamania.ContactCredentials(sourceEmail)).MigrateContact(ctx, s, sourceContactID, targetContactID, targetClubID)
}
