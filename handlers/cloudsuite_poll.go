package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
)

// CloudSuiteDirectory is what the poller needs from a CloudSuite client.
type CloudSuiteDirectory interface {
	Origin() string
	NewUsers(ctx context.Context, since string) ([]cloudsuite.User, error)
	Profile(ctx context.Context, id int64) (json.RawMessage, error)
}

// CloudSuitePollerConfig configures the poller of one tenant's origin.
type CloudSuitePollerConfig struct {
	Tenant string
	API    CloudSuiteDirectory
	// Interval is the time between polls; default 30s.
	Interval time.Duration
	// Holder names this instance in the poll lease.
	Holder string
	// Overlap is how far before the watermark each poll looks again, so
	// that users committed late at the boundary are not missed; default
	// 10 minutes. Users seen again are recognised and skipped.
	Overlap time.Duration
	// LeaseTTL is how long the poll lease lasts without renewal: how long
	// the other instances wait when its holder dies. Default 3×Interval,
	// at least 2s and at most 2 minutes.
	LeaseTTL time.Duration
	// MaxBackoff caps the wait after failed polls; default 10×Interval, at
	// most 10 minutes.
	MaxBackoff time.Duration
	Metrics    *PollerMetrics
}

// CloudSuitePoller polls one origin for new inactive users and starts a
// registration flow for each user it has not seen, announcing it with
// cloudsuite.user_registered (seed 004: CloudSuite pushes nothing).
//
// A user is announced once: the flow (registrationId
// cloudsuite:<origin>:<userKey>) and the event are written in one store
// transaction that fails when the flow exists, so neither a restart nor a
// second instance announces it again. Only the holder of the poll lease
// polls, to spare the vendor; the lease expires when its holder dies, and
// another instance takes over. The watermark (the newest create_date seen)
// is a store checkpoint: a poll asks for users created since it, minus
// Overlap.
type CloudSuitePoller struct {
	rt  *Runtime
	cfg CloudSuitePollerConfig
	log *slog.Logger
}

// NewCloudSuitePoller returns a poller; Run starts it.
func NewCloudSuitePoller(rt *Runtime, cfg CloudSuitePollerConfig) *CloudSuitePoller {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = 10 * time.Minute
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = min(max(3*cfg.Interval, 2*time.Second), 2*time.Minute)
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = min(10*cfg.Interval, 10*time.Minute)
	}
	return &CloudSuitePoller{rt: rt, cfg: cfg,
		log: rt.log().With("component", "cloudsuite-poller", "tenant", cfg.Tenant, "origin", cfg.API.Origin())}
}

// CloudSuiteRegistrationID is the registrationId of the flow of a user.
func CloudSuiteRegistrationID(origin, userKey string) string {
	return "cloudsuite:" + origin + ":" + userKey
}

func (p *CloudSuitePoller) leaseName() string { return "cloudsuite-poll:" + p.cfg.Tenant }

// CheckpointName is the store checkpoint holding the poller's watermark.
func (p *CloudSuitePoller) CheckpointName() string {
	return "cloudsuite-watermark:" + p.cfg.Tenant + ":" + p.cfg.API.Origin()
}

// Run polls until ctx is done, then gives the lease up. A failed poll is
// logged, counted and retried after a growing delay; it never stops Run.
func (p *CloudSuitePoller) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = min(p.cfg.Interval, 5*time.Second)
	bo.MaxInterval = p.cfg.MaxBackoff
	bo.MaxElapsedTime = 0
	bo.Reset()
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := p.rt.Store.ReleaseLease(ctx, p.leaseName(), p.cfg.Holder); err != nil {
			p.log.Warn("releasing the poll lease failed; another instance takes over when it expires", "err", err)
		}
		p.cfg.Metrics.leader(p.cfg.Tenant, false)
	}()
	for {
		wait := p.cfg.Interval
		res, err := p.PollOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			wait = bo.NextBackOff()
			p.log.Warn("CloudSuite poll failed; polling again later", "err", err, "retryIn", wait.Round(time.Millisecond))
		default:
			bo.Reset()
			if res.Announced > 0 {
				p.log.Info("CloudSuite poll announced new users", "announced", res.Announced, "listed", res.Listed)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// PollResult is what one poll did.
type PollResult struct {
	Standby   bool // another instance holds the lease: nothing was polled
	Listed    int  // users CloudSuite listed
	Announced int  // users announced (flows started)
	Known     int  // users seen before
	Invalid   int  // users that cannot be announced (no usable key)
	Watermark string
}

// PollOnce polls once if this instance holds (or gets) the lease.
func (p *CloudSuitePoller) PollOnce(ctx context.Context) (res PollResult, err error) {
	m, tenant := p.cfg.Metrics, p.cfg.Tenant
	started := time.Now()
	defer func() {
		switch {
		case res.Standby:
			m.poll(tenant, "standby", 0)
		case err != nil && ctx.Err() == nil:
			m.poll(tenant, "error", time.Since(started))
		case err == nil:
			m.poll(tenant, "ok", time.Since(started))
			m.success(tenant, time.Now())
		}
	}()
	held, err := p.rt.Store.AcquireLease(ctx, p.leaseName(), p.cfg.Holder, p.cfg.LeaseTTL)
	if err != nil {
		return res, fmt.Errorf("poll lease: %w", err)
	}
	m.leader(tenant, held)
	if !held {
		res.Standby = true
		return res, nil
	}
	name := p.CheckpointName()
	watermark, err := p.rt.Store.Checkpoint(ctx, name)
	if err != nil {
		return res, err
	}
	since := ""
	wm, hasWM := parseCloudSuiteTime(watermark)
	if hasWM {
		since = wm.Add(-p.cfg.Overlap).Format(cloudSuiteTimeLayout)
	}
	users, err := p.cfg.API.NewUsers(ctx, since)
	if err != nil {
		return res, fmt.Errorf("list new users: %w", err)
	}
	res.Listed = len(users)
	newest := wm
	renewed := time.Now()
	for _, u := range users {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if time.Since(renewed) > p.cfg.LeaseTTL/3 {
			// A long poll keeps its lease; losing it stops this one.
			if held, err := p.rt.Store.AcquireLease(ctx, p.leaseName(), p.cfg.Holder, p.cfg.LeaseTTL); err != nil || !held {
				return res, fmt.Errorf("poll lease lost during the poll (err %v)", err)
			}
			renewed = time.Now()
		}
		announced, err := p.announce(ctx, u)
		switch {
		case errors.Is(err, errUnusableUser):
			res.Invalid++
			m.user(tenant, "invalid")
			p.log.Warn("CloudSuite listed a user that cannot be announced", "err", err)
			continue
		case err != nil:
			return res, err
		case announced:
			res.Announced++
			m.user(tenant, "announced")
		default:
			res.Known++
			m.user(tenant, "known")
		}
		if t, ok := parseCloudSuiteTime(u.CreateDate); ok && t.After(newest) {
			newest = t
		}
	}
	// The watermark moves only after every listed user is announced, so a
	// failed poll repeats from where the last complete one ended.
	if newest.After(wm) {
		watermark = newest.Format(cloudSuiteTimeLayout)
		if err := p.rt.Store.SetCheckpoint(ctx, name, watermark); err != nil {
			return res, err
		}
	}
	res.Watermark = watermark
	return res, nil
}

var errUnusableUser = errors.New("unusable CloudSuite user")

// userKeyPattern is what a user key must look like to make a
// registrationId (CloudSuite's keys are UUIDs).
var userKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,90}$`)

// announce starts the registration flow of u unless it has one. It reports
// whether it started it.
func (p *CloudSuitePoller) announce(ctx context.Context, u cloudsuite.User) (bool, error) {
	rt := p.rt
	origin := p.cfg.API.Origin()
	if !userKeyPattern.MatchString(u.Key) {
		return false, fmt.Errorf("%w: key %q is not a CloudSuite user key", errUnusableUser, truncate(u.Key, 40))
	}
	id := CloudSuiteRegistrationID(origin, u.Key)
	if _, err := rt.Store.Flow(ctx, id); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("read flow: %w", err)
	}
	var profiles []json.RawMessage
	for _, pid := range u.Profiles {
		prof, err := p.cfg.API.Profile(ctx, pid)
		if errors.Is(err, vendors.ErrNotFound) {
			p.log.Warn("a profile the user lists does not exist; announcing the user without it", "registrationId", id, "profile", pid)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("profile %d of user %s: %w", pid, u.Key, err)
		}
		profiles = append(profiles, prof)
	}
	e := &events.CloudSuiteUserRegistered{Origin: origin, UserKey: u.Key, Email: u.Email, User: u.Raw}
	if len(profiles) > 0 {
		e.Profile = profiles[0]
	}
	if len(profiles) > 1 {
		e.Profiles = profiles
	}
	now := rt.now()
	m, err := eventMessage(e, deterministicID(id, events.EvtCloudSuiteUserRegistered), id, FlowCloudSuiteRegistration, now)
	if err != nil {
		return false, err
	}
	cmd, err := json.Marshal(cloudsuiteDiscovery{RegistrationID: id, Tenant: p.cfg.Tenant, Origin: origin, UserKey: u.Key})
	if err != nil {
		return false, err
	}
	data := &flowData{Command: cmd,
		Steps:  []StepRecord{{Step: "cloudsuite.poll", Seq: 1, StartedAt: now, FinishedAt: now, Attempts: 1, Outcome: "announced"}},
		Events: []EmittedEvent{{ID: m.ID, Type: e.EventType(), At: now}}}
	b, err := data.encode()
	if err != nil {
		return false, err
	}
	f := store.Flow{RegistrationID: id, Flow: FlowCloudSuiteRegistration, Tenant: p.cfg.Tenant, Status: store.StatusWaiting,
		Step: StepCloudSuiteActivate, Seq: 1, WaitingFor: WaitingForActivation, Data: b}
	created := true
	err = rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		err := tx.CreateFlow(ctx, f)
		if errors.Is(err, store.ErrExists) {
			created = false // another instance announced it meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		return tx.Enqueue(ctx, m)
	})
	if err != nil {
		return false, fmt.Errorf("announce %s: %w", id, err)
	}
	if created {
		rt.notify()
		rt.Metrics.flowStarted(FlowCloudSuiteRegistration)
		rt.log().Info("CloudSuite user announced", "registrationId", id, "flow", FlowCloudSuiteRegistration, "tenant", p.cfg.Tenant)
	}
	return created, nil
}

// cloudsuiteDiscovery is the flow command of a registration flow until an
// activation command replaces it.
type cloudsuiteDiscovery struct {
	RegistrationID string `json:"registrationId"`
	Tenant         string `json:"tenant"`
	Origin         string `json:"origin"`
	UserKey        string `json:"userKey"`
}

// cloudSuiteTimeLayout is how CloudSuite writes times: naive, with
// microseconds ("2023-01-18T09:23:02.507764").
const cloudSuiteTimeLayout = "2006-01-02T15:04:05.000000"

// parseCloudSuiteTime reads a CloudSuite create_date (naive, taken as UTC;
// with or without a fraction or a zone).
func parseCloudSuiteTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// PollerMetrics are the pollers' Prometheus metrics. A nil *PollerMetrics
// records nothing. The tenant label is a configured name (a bounded set).
type PollerMetrics struct {
	polls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	users       *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	leaders     *prometheus.GaugeVec
}

// NewPollerMetrics creates the metrics and registers them with reg.
func NewPollerMetrics(reg prometheus.Registerer) (*PollerMetrics, error) {
	m := &PollerMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "cloudsuite_polls_total",
			Help: "CloudSuite polls, by tenant and result (ok, error, standby: another instance holds the poll lease).",
		}, []string{"tenant", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "registrar", Name: "cloudsuite_poll_duration_seconds",
			Help:    "Duration of the CloudSuite polls this instance made (listing, profiles, announcing), by tenant and result.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"tenant", "result"}),
		users: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "cloudsuite_users_total",
			Help: "Users the CloudSuite polls listed, by tenant and what became of them (announced, known: seen before, invalid).",
		}, []string{"tenant", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "registrar", Name: "cloudsuite_last_poll_success_timestamp_seconds",
			Help: "When this instance last completed a CloudSuite poll (Unix time); the lag is time() minus it.",
		}, []string{"tenant"}),
		leaders: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "registrar", Name: "cloudsuite_poll_lease_held",
			Help: "1 when this instance holds the CloudSuite poll lease of the tenant, else 0.",
		}, []string{"tenant"}),
	}
	for _, c := range []prometheus.Collector{m.polls, m.duration, m.users, m.lastSuccess, m.leaders} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register poller metrics: %w", err)
		}
	}
	return m, nil
}

func (m *PollerMetrics) poll(tenant, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.polls.WithLabelValues(tenant, result).Inc()
	if result != "standby" {
		m.duration.WithLabelValues(tenant, result).Observe(d.Seconds())
	}
}

func (m *PollerMetrics) user(tenant, result string) {
	if m != nil {
		m.users.WithLabelValues(tenant, result).Inc()
	}
}

func (m *PollerMetrics) success(tenant string, at time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(tenant).Set(float64(at.UnixNano()) / 1e9)
	}
}

func (m *PollerMetrics) leader(tenant string, held bool) {
	if m == nil {
		return
	}
	v := 0.0
	if held {
		v = 1
	}
	m.leaders.WithLabelValues(tenant).Set(v)
}
