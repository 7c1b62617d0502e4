package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is the part of the store the Forwarder reads and trims.
type Source interface {
	PendingOutbox(ctx context.Context, limit int) ([]Record, error)
	DeleteOutbox(ctx context.Context, seqs []int64) error
}

// Leaser grants the forwarding lease, so one instance forwards at a time
// and per-key order holds across instances.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Publisher publishes to JetStream asynchronously; jetstream.JetStream
// satisfies it.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Fault points the Forwarder calls Config.FaultHook at (tests and
// `registrar serve` with REGISTRAR_FAULT_KILL_AT stop the process there).
const (
	FaultBeforePublish = "forwarder.before_publish" // rows committed, nothing published yet
	FaultAfterPublish  = "forwarder.after_publish"  // rows published and acknowledged, not yet deleted
)

// Config configures a Forwarder.
type Config struct {
	Source    Source
	Publisher Publisher
	// Leaser is optional: nil means this process is the only forwarder.
	Leaser Leaser
	// Holder identifies this instance in the lease. Required with Leaser.
	Holder string
	// LeaseName defaults to "outbox-forwarder"; LeaseTTL to 10s.
	LeaseName string
	LeaseTTL  time.Duration
	// BatchSize is the most records read and published per round. Default 500.
	BatchSize int
	// PollInterval is how often the outbox is read when nothing calls
	// Notify (rows written by another instance, or after a restart).
	// Default 250ms.
	PollInterval time.Duration
	// PublishTimeout bounds the wait for the server's acknowledgements of
	// one wave of publishes. Default 10s.
	PublishTimeout time.Duration
	// FaultHook, when set, is called at the Fault* points with the records
	// of the round.
	FaultHook func(point string, recs []Record)
	// Registerer receives the forwarder's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.LeaseName == "" {
		c.LeaseName = "outbox-forwarder"
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Source == nil {
		return errors.New("forwarder: Source is required")
	}
	if c.Publisher == nil {
		return errors.New("forwarder: Publisher is required")
	}
	if c.Leaser != nil && c.Holder == "" {
		return errors.New("forwarder: Holder is required with a Leaser")
	}
	return nil
}

// Forwarder relays outbox records to JetStream.
//
// Each record is published with Nats-Msg-Id = its ID and deleted only after
// the server acknowledged it, so a crash at any point re-publishes at most
// what the server then drops as a duplicate (within the stream's duplicate
// window). Records with the same Key are published in order: the k-th record
// of a key goes out only after the server acknowledged the (k-1)-th, and a
// failure holds back the rest of that key until the next round. Different
// keys are published concurrently.
type Forwarder struct {
	cfg    Config
	notify chan struct{}

	forwarded prometheus.Counter
	failures  prometheus.Counter
	rounds    prometheus.Histogram
}

// NewForwarder returns a Forwarder; Run starts it.
func NewForwarder(cfg Config) (*Forwarder, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forwarder{
		cfg:    cfg,
		notify: make(chan struct{}, 1),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "registrar", Subsystem: "outbox", Name: "forwarded_total",
			Help: "Outbox messages published to NATS and acknowledged by the server.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "registrar", Subsystem: "outbox", Name: "publish_failures_total",
			Help: "Outbox publishes that failed and will be retried.",
		}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "registrar", Subsystem: "outbox", Name: "round_size",
			Help:    "Outbox messages forwarded per round.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{f.forwarded, f.failures, f.rounds} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("forwarder: register metrics: %w", err)
			}
		}
	}
	return f, nil
}

// Notify wakes the forwarder up: call it after committing outbox records.
// It never blocks.
func (f *Forwarder) Notify() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// Run forwards until ctx is done; a leader then publishes what is pending
// (for at most 5 seconds) and releases its lease. It returns nil on
// cancellation; store and NATS errors are logged and retried, never
// returned.
func (f *Forwarder) Run(ctx context.Context) error {
	log := f.cfg.Logger
	leader := f.cfg.Leaser == nil
	var renewedAt time.Time
	errDelay := f.cfg.PollInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer func() {
		if f.cfg.Leaser != nil && leader {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = f.cfg.Leaser.ReleaseLease(rctx, f.cfg.LeaseName, f.cfg.Holder)
		}
	}()

	for {
		select {
		case <-ctx.Done():
			if leader {
				f.flush(ctx)
			}
			return nil
		case <-timer.C:
		case <-f.notify:
		}
		wait := f.cfg.PollInterval

		if f.cfg.Leaser != nil && time.Since(renewedAt) > f.cfg.LeaseTTL/3 {
			ok, err := f.cfg.Leaser.AcquireLease(ctx, f.cfg.LeaseName, f.cfg.Holder, f.cfg.LeaseTTL)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					log.Warn("outbox lease", "err", err)
				}
				ok = false
			case ok && !leader:
				log.Info("outbox forwarder leading", "holder", f.cfg.Holder)
			case !ok && leader:
				log.Warn("outbox forwarder lost its lease", "holder", f.cfg.Holder)
			}
			leader = ok
			if ok {
				renewedAt = time.Now()
			}
		}

		if leader {
			n, err := f.Round(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("outbox round failed", "err", err, "retryIn", errDelay)
				wait = errDelay
				errDelay = min(errDelay*2, 10*time.Second)
			case err == nil:
				errDelay = f.cfg.PollInterval
				if n == f.cfg.BatchSize {
					wait = 0 // more is waiting
				}
			}
		}
		resetTimer(timer, wait)
	}
}

// flushTimeout bounds the last rounds a stopping leader runs.
const flushTimeout = 5 * time.Second

// flush publishes what is pending when Run stops, for at most flushTimeout:
// the rows the last handlers committed during shutdown go out now instead
// of at the next start.
func (f *Forwarder) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	for {
		n, err := f.Round(fctx)
		if err != nil {
			f.cfg.Logger.Warn("outbox: final round before stopping failed; the rows go out at the next start", "err", err)
			return
		}
		if n < f.cfg.BatchSize {
			return
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

// Round forwards one batch and returns how many records it read. Records it
// could not publish stay in the outbox for the next round.
func (f *Forwarder) Round(ctx context.Context) (int, error) {
	recs, err := f.cfg.Source.PendingOutbox(ctx, f.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if f.cfg.FaultHook != nil {
		f.cfg.FaultHook(FaultBeforePublish, recs)
	}

	// Queue the records per key, keeping their order.
	var keys []string
	queues := make(map[string][]Record)
	for _, r := range recs {
		if _, ok := queues[r.Key]; !ok {
			keys = append(keys, r.Key)
		}
		queues[r.Key] = append(queues[r.Key], r)
	}

	sent := make([]int64, 0, len(recs))
	held := make(map[string]bool)
	var firstErr error
	type inFlight struct {
		key    string
		seq    int64
		future jetstream.PubAckFuture
	}
	for wave := 0; ; wave++ {
		var futures []inFlight
		for _, k := range keys {
			q := queues[k]
			if wave >= len(q) || held[k] {
				continue
			}
			r := q[wave]
			fut, err := f.cfg.Publisher.PublishMsgAsync(toNATS(r.Message))
			if err != nil {
				held[k] = true
				firstErr = cmpErr(firstErr, fmt.Errorf("publish %s: %w", r.Subject, err))
				continue
			}
			futures = append(futures, inFlight{key: k, seq: r.Seq, future: fut})
		}
		if len(futures) == 0 {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
		for _, p := range futures {
			err := waitAck(wctx, p.future, f.cfg.PublishTimeout)
			switch {
			case err == nil:
				sent = append(sent, p.seq)
			case ctx.Err() != nil:
				cancel()
				return len(recs), ctx.Err()
			default:
				held[p.key] = true
				firstErr = cmpErr(firstErr, fmt.Errorf("publish %s: %w", p.future.Msg().Subject, err))
			}
		}
		cancel()
	}
	if failed := len(recs) - len(sent); failed > 0 {
		f.failures.Add(float64(failed))
	}
	if len(sent) > 0 {
		if f.cfg.FaultHook != nil {
			f.cfg.FaultHook(FaultAfterPublish, recs)
		}
		// A failure here only means the records go out again next round and
		// the server drops them as duplicates.
		if err := f.cfg.Source.DeleteOutbox(ctx, sent); err != nil {
			return len(recs), fmt.Errorf("delete forwarded outbox records: %w", err)
		}
		f.forwarded.Add(float64(len(sent)))
		f.rounds.Observe(float64(len(sent)))
	}
	return len(recs), firstErr
}

// waitAck waits for the server's answer to one publish until ctx ends (the
// wave's timeout: once it has passed, later futures get no more time). An
// answer that is there when ctx has ended still counts (a select that finds
// both ready picks one at random), so one slow acknowledgement does not
// fail the other keys' records of its wave.
func waitAck(ctx context.Context, fut jetstream.PubAckFuture, timeout time.Duration) error {
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	case <-ctx.Done():
	}
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	default:
		return fmt.Errorf("no acknowledgement in %s", timeout)
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func toNATS(m Message) *nats.Msg {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Payload
	for k, v := range m.Headers {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(nats.MsgIdHdr, m.ID)
	return msg
}
