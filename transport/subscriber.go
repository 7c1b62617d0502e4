package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metadata keys the Subscriber sets on every Watermill message besides the
// NATS headers (which are copied as they are, first value of each).
const (
	MetaSubject     = "registrar.subject"      // the NATS subject the message was published to
	MetaDelivered   = "registrar.delivered"    // how many times JetStream delivered it (1 the first time)
	MetaStreamSeq   = "registrar.stream_seq"   // its sequence in the stream
	MetaPublishedAt = "registrar.published_at" // when the stream stored it (RFC 3339 nano)
	// MetaNakDelay may be set by a handler before it returns an error: the
	// redelivery delay (a Go duration) instead of the subscriber's default.
	MetaNakDelay = "registrar.nak_delay"
	// MetaPark may be set by a handler that acknowledges a message it
	// could not act on yet (a vendor's circuit is open): the subscriber
	// then redelivers it after this delay (a Go duration) instead of
	// acknowledging it. Parking is not a failure: nothing is logged as an
	// error.
	MetaPark = "registrar.park"
)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// JetStream is the JetStream context of the connection to consume on.
	JetStream jetstream.JetStream
	// Stream holds the durable consumers this subscriber binds to.
	Stream string
	// InFlight is the most messages one topic (consumer) processes at once.
	// It must equal the consumer's MaxAckPending. Default 256.
	InFlight int
	// NakDelay gives the redelivery delay of a message whose handler
	// returned an error, from the number of times it was delivered. Default:
	// 1s doubling up to 1 minute.
	NakDelay func(delivered uint64) time.Duration
	// CloseTimeout bounds how long Close waits for messages being handled.
	// Default 30s.
	CloseTimeout time.Duration
	Logger       *slog.Logger
}

func (c *SubscriberConfig) setDefaults() {
	if c.InFlight <= 0 {
		c.InFlight = 256
	}
	if c.NakDelay == nil {
		c.NakDelay = DefaultNakDelay
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration that cannot work.
func (c SubscriberConfig) Validate() error {
	if c.JetStream == nil {
		return errors.New("subscriber: JetStream is required")
	}
	if c.Stream == "" {
		return errors.New("subscriber: Stream is required")
	}
	return nil
}

// pullExpiry bounds each pull request the subscriber keeps at the server.
const pullExpiry = 5 * time.Second

// DefaultNakDelay waits 1s after the first delivery and doubles up to 1m.
func DefaultNakDelay(delivered uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < delivered && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// Subscriber is a Watermill message.Subscriber over JetStream durable pull
// consumers. The topic given to Subscribe is the name of a durable consumer
// on the configured stream, created beforehand (ProvisionConsumer): the
// subscriber never creates or deletes consumers, so closing it leaves the
// consumer and its ack floor in place.
//
// Up to InFlight messages per topic are handed to the router at once; each
// is acknowledged on the server when the handler acks it (Ack), redelivered
// after NakDelay when the handler nacks it, and kept alive with InProgress
// while the handler runs longer than a third of the consumer's AckWait.
//
// A subscription stops, as Close stops them all, when the context given to
// Subscribe ends (Watermill's contract: the router relies on it when the
// context given to Router.Run is cancelled).
type Subscriber struct {
	cfg SubscriberConfig

	mu     sync.Mutex
	closed bool
	subs   []*subscription
}

// subscription is one Subscribe call: one consumer, one output channel.
type subscription struct {
	cc       jetstream.ConsumeContext
	out      chan *message.Message
	closing  chan struct{} // closed when the subscription stops
	stopped  bool          // guarded by Subscriber.mu
	inflight sync.WaitGroup
	done     chan struct{} // closed once out is closed
}

// NewSubscriber returns a Subscriber; it does no I/O.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg}, nil
}

// Subscribe starts consuming from the durable consumer named topic.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscriber: closed")
	}
	cons, err := s.cfg.JetStream.Consumer(ctx, s.cfg.Stream, topic)
	if err != nil {
		return nil, fmt.Errorf("subscriber: bind consumer %s on %s: %w", topic, s.cfg.Stream, err)
	}
	info := cons.CachedInfo()
	ackWait := info.Config.AckWait
	if info.Config.MaxAckPending != s.cfg.InFlight {
		s.cfg.Logger.Warn("consumer MaxAckPending differs from the subscriber's in-flight bound",
			"consumer", topic, "maxAckPending", info.Config.MaxAckPending, "inFlight", s.cfg.InFlight)
	}
	sub := &subscription{
		out:     make(chan *message.Message),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	slots := make(chan struct{}, s.cfg.InFlight)
	log := s.cfg.Logger.With("consumer", topic)

	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-sub.closing:
			_ = m.Nak()
			return
		}
		s.mu.Lock()
		if sub.stopped {
			s.mu.Unlock()
			<-slots
			_ = m.Nak()
			return
		}
		sub.inflight.Add(1)
		s.mu.Unlock()
		go func() {
			defer sub.inflight.Done()
			defer func() { <-slots }()
			s.process(ctx, m, sub, ackWait, log)
		}()
	},
		jetstream.PullMaxMessages(s.cfg.InFlight),
		// Short pull requests: after a subscriber stops, the server may
		// still route messages to its pending requests until they
		// expire, delaying them by up to the expiry (30s by default).
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) && !errors.Is(err, nats.ErrConnectionClosed) {
				log.Warn("consume error", "err", err)
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("subscriber: consume %s: %w", topic, err)
	}
	sub.cc = cc
	s.subs = append(s.subs, sub)
	go func() {
		select {
		case <-ctx.Done():
			s.stop(sub)
			s.wait(sub)
		case <-sub.closing:
		}
	}()
	return sub.out, nil
}

func (s *Subscriber) process(ctx context.Context, m jetstream.Msg, sub *subscription, ackWait time.Duration, log *slog.Logger) {
	wm := toWatermill(m)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	wm.SetContext(mctx)

	select {
	case sub.out <- wm:
	case <-sub.closing:
		// Not handed over yet: let another instance have it at once.
		_ = m.Nak()
		return
	}

	keepAlive := max(ackWait/3, 100*time.Millisecond)
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	closing := sub.closing // nil once seen: a closed channel is always ready
	var deadline <-chan time.Time
	for {
		select {
		case <-wm.Acked():
			if d, ok := parkDelay(wm); ok {
				if err := m.NakWithDelay(d); err != nil {
					log.Warn("parking failed; the message will be redelivered after AckWait", "uuid", wm.UUID, "err", err)
				}
				return
			}
			if err := m.Ack(); err != nil {
				log.Warn("ack failed; the message will be redelivered", "uuid", wm.UUID, "err", err)
			}
			return
		case <-wm.Nacked():
			delay := s.nakDelay(wm)
			if err := m.NakWithDelay(delay); err != nil {
				log.Warn("nak failed; the message will be redelivered after AckWait", "uuid", wm.UUID, "err", err)
			}
			return
		case <-ticker.C:
			if err := m.InProgress(); err != nil {
				log.Debug("in-progress failed", "uuid", wm.UUID, "err", err)
			}
		case <-closing:
			closing = nil
			t := time.NewTimer(s.cfg.CloseTimeout)
			defer t.Stop()
			deadline = t.C
		case <-deadline:
			// The handler outlived the close timeout: give up on it; the
			// server redelivers the message after AckWait and the step's
			// idempotency makes that safe.
			cancel()
			return
		}
	}
}

// parkDelay is the delay of a message its handler parked (MetaPark).
func parkDelay(wm *message.Message) (time.Duration, bool) {
	v := wm.Metadata.Get(MetaPark)
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	return max(d, 0), err == nil
}

func (s *Subscriber) nakDelay(wm *message.Message) time.Duration {
	if v := wm.Metadata.Get(MetaNakDelay); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	n, _ := strconv.ParseUint(wm.Metadata.Get(MetaDelivered), 10, 64)
	return s.cfg.NakDelay(n)
}

func toWatermill(m jetstream.Msg) *message.Message {
	h := m.Headers()
	id := h.Get(nats.MsgIdHdr)
	md, mdErr := m.Metadata()
	if id == "" && mdErr == nil {
		id = md.Stream + "-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	wm := message.NewMessage(id, m.Data())
	for k, vs := range h {
		if len(vs) > 0 {
			wm.Metadata.Set(k, vs[0])
		}
	}
	wm.Metadata.Set(MetaSubject, m.Subject())
	if mdErr == nil {
		wm.Metadata.Set(MetaDelivered, strconv.FormatUint(md.NumDelivered, 10))
		wm.Metadata.Set(MetaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		wm.Metadata.Set(MetaPublishedAt, md.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	return wm
}

// Close stops consuming, waits up to CloseTimeout for the messages being
// handled, and closes the channels Subscribe returned. Messages received
// but not yet handed to a handler are nacked for immediate redelivery. It is
// safe to call more than once.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.mu.Unlock()

	// Signal every subscription first, so that their handlers share one
	// CloseTimeout, then wait for them.
	for _, sub := range subs {
		s.stop(sub)
	}
	for _, sub := range subs {
		s.wait(sub)
	}
	return nil
}

// stop stops a subscription's consuming and tells its messages to finish.
func (s *Subscriber) stop(sub *subscription) {
	s.mu.Lock()
	if sub.stopped {
		s.mu.Unlock()
		return
	}
	sub.stopped = true
	close(sub.closing)
	s.mu.Unlock()
	// Stop, not Drain: draining waits for the outstanding pull request to
	// expire (30s). Messages still in the client buffer are few (the
	// consumer's MaxAckPending bounds them) and are redelivered after
	// AckWait.
	sub.cc.Stop()
}

// wait waits for a stopped subscription's messages and closes its output
// channel; callers racing to do so all return once it is closed.
func (s *Subscriber) wait(sub *subscription) {
	sub.inflight.Wait()
	s.mu.Lock()
	select {
	case <-sub.done:
	default:
		close(sub.out)
		close(sub.done)
	}
	s.mu.Unlock()
}
