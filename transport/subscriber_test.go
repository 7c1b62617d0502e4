package transport_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/transport/natstest"
)

// waitFor bounds every wait for something that should happen soon:
// generous, the machine is small and busy.
const waitFor = 30 * time.Second

// routerCloseTimeout is the routers' CloseTimeout: far longer than a
// prompt Close takes, and than waitFor.
const routerCloseTimeout = 2 * time.Minute

// env is an embedded NATS server with the service's streams.
type env struct {
	t    *testing.T
	js   jetstream.JetStream
	topo transport.Topology
}

func newEnv(t *testing.T) *env {
	t.Helper()
	n := natstest.StartTopology(t, transport.Topology{DuplicateWindow: time.Minute}.WithDefaults())
	return &env{t: t, js: n.JS, topo: n.Topo}
}

// subject is the command subject the test consumer name reads.
func subject(consumer string) string { return "registration.cmd." + consumer + ".register" }

// consumer provisions a durable consumer on the commands stream that reads
// subject(name).
func (e *env) consumer(name string, maxAckPending int, ackWait time.Duration) {
	e.t.Helper()
	_, err := transport.ProvisionConsumer(e.t.Context(), e.js, transport.ConsumerSpec{
		Stream: e.topo.Commands, Durable: name, FilterSubject: subject(name),
		MaxAckPending: maxAckPending, AckWait: ackWait,
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// publish publishes n messages to subject(consumer) with Nats-Msg-Id
// "<consumer>-<first+i>" and returns their ids.
func (e *env) publish(consumer string, first, n int) []string {
	e.t.Helper()
	var ids []string
	var futures []jetstream.PubAckFuture
	for i := first; i < first+n; i++ {
		m := nats.NewMsg(subject(consumer))
		id := fmt.Sprintf("%s-%d", consumer, i)
		m.Header.Set(nats.MsgIdHdr, id)
		m.Data = []byte(id)
		f, err := e.js.PublishMsgAsync(m)
		if err != nil {
			e.t.Fatal(err)
		}
		futures = append(futures, f)
		ids = append(ids, id)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			e.t.Fatal(err)
		case <-time.After(waitFor):
			e.t.Fatal("no publish acknowledgement")
		}
	}
	return ids
}

func (e *env) subscriber(inFlight int, opts ...func(*transport.SubscriberConfig)) *transport.Subscriber {
	e.t.Helper()
	cfg := transport.SubscriberConfig{JetStream: e.js, Stream: e.topo.Commands, InFlight: inFlight}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := transport.NewSubscriber(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *env) info(consumer string) *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.js.Consumer(e.t.Context(), e.topo.Commands, consumer)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// settled waits until every message the consumer was handed is
// acknowledged, and checks that none was delivered twice: the consumer's
// delivered sequence counts redeliveries too.
func (e *env) settled(consumer string, published int) {
	e.t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(e.t, "every message acknowledged", func() bool {
		info = e.info(consumer)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if info.NumRedelivered != 0 {
		e.t.Errorf("NumRedelivered = %d", info.NumRedelivered)
	}
	if info.Delivered.Consumer != uint64(published) {
		e.t.Errorf("%d deliveries for %d messages: some were redelivered", info.Delivered.Consumer, published)
	}
	if info.AckFloor.Stream != info.Delivered.Stream {
		e.t.Errorf("ack floor %d, delivered up to %d", info.AckFloor.Stream, info.Delivered.Stream)
	}
}

// eventually waits until cond holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", waitFor, what)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

// running is a Watermill router run by a test.
type running struct {
	t      *testing.T
	router *message.Router
	done   chan error
	cancel context.CancelFunc
}

// runRouter runs a router with one consumer handler on sub. The router
// gets a context of its own, cancelled by r.cancel.
func runRouter(t *testing.T, sub message.Subscriber, consumer string, h message.NoPublishHandlerFunc) *running {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: routerCloseTimeout}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddConsumerHandler(consumer, consumer, sub, h)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r := &running{t: t, router: router, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-r.done:
		t.Fatalf("router: %v", err)
	case <-time.After(waitFor):
		t.Fatal("router not running")
	}
	t.Cleanup(func() {
		_ = router.Close()
		cancel()
	})
	return r
}

// close closes the router and checks Close and Run return, without error,
// well within the router's CloseTimeout.
func (r *running) close() {
	r.t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- r.router.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			r.t.Fatalf("router Close: %v", err)
		}
	case <-time.After(waitFor):
		r.t.Fatal("router Close did not return")
	}
	r.wait()
}

// wait checks Run returns.
func (r *running) wait() {
	r.t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("router Run: %v", err)
		}
	case <-time.After(waitFor):
		r.t.Fatal("router Run did not return")
	}
}

// tally counts the messages a handler saw, by UUID.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
	meta map[string][]message.Metadata // every delivery's metadata
}

func newTally() *tally {
	return &tally{seen: map[string]int{}, meta: map[string][]message.Metadata{}}
}

func (c *tally) add(msg *message.Message) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[msg.UUID]++
	md := make(message.Metadata, len(msg.Metadata))
	for k, v := range msg.Metadata {
		md[k] = v
	}
	c.meta[msg.UUID] = append(c.meta[msg.UUID], md)
	return c.seen[msg.UUID]
}

func (c *tally) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *tally) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// once checks the handler saw exactly ids, each once, first delivery.
func (c *tally) once(t *testing.T, ids []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) != len(ids) {
		t.Errorf("handled %d distinct messages, want %d", len(c.seen), len(ids))
	}
	for _, id := range ids {
		if n := c.seen[id]; n != 1 {
			t.Errorf("%s handled %d times", id, n)
			continue
		}
		if d := c.meta[id][0].Get(transport.MetaDelivered); d != "1" {
			t.Errorf("%s: delivered %s times", id, d)
		}
	}
}

func TestProvisionStreams(t *testing.T) {
	wantSubjects := map[string]string{
		"REGISTRATION_COMMANDS": transport.CommandSubjects,
		"REGISTRATION_EVENTS":   transport.EventSubjects,
		"REGISTRATION_DLQ":      transport.DeadLetterSubjects,
		"REGISTRAR_STEPS":       transport.StepSubjects,
	}
	tests := []struct {
		name string
		// existing is created before ProvisionStreams runs.
		existing []jetstream.StreamConfig
		wantErr  string
	}{
		{name: "creates the four streams"},
		{
			name:     "keeps a stream an operator tuned",
			existing: []jetstream.StreamConfig{{Name: "REGISTRATION_EVENTS", Subjects: []string{transport.EventSubjects}, MaxAge: time.Hour}},
		},
		{
			name:     "accepts a stream with more subjects",
			existing: []jetstream.StreamConfig{{Name: "REGISTRATION_DLQ", Subjects: []string{"legacy.dlq.>", transport.DeadLetterSubjects}}},
		},
		{
			name:     "refuses a stream with other subjects",
			existing: []jetstream.StreamConfig{{Name: "REGISTRATION_EVENTS", Subjects: []string{"other.evt.>"}}},
			wantErr:  "REGISTRATION_EVENTS",
		},
		{
			name:     "refuses a stream with narrower subjects",
			existing: []jetstream.StreamConfig{{Name: "REGISTRATION_COMMANDS", Subjects: []string{"registration.cmd.resamania.>"}}},
			wantErr:  "REGISTRATION_COMMANDS",
		},
		{
			name:     "another stream holds the subjects",
			existing: []jetstream.StreamConfig{{Name: "SOMEONE_ELSES", Subjects: []string{"registrar.>"}}},
			wantErr:  "REGISTRAR_STEPS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			ns, err := transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			for _, cfg := range tt.existing {
				if _, err := js.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			topo := transport.Topology{}

			err = transport.ProvisionStreams(ctx, js, topo)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ProvisionStreams: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ProvisionStreams: %v", err)
			}

			infos := streamInfos(t, js)
			for name, subj := range wantSubjects {
				info, ok := infos[name]
				if !ok {
					t.Errorf("stream %s missing", name)
					continue
				}
				if !slices.Contains(info.Config.Subjects, subj) {
					t.Errorf("stream %s subjects %v, want %s", name, info.Config.Subjects, subj)
				}
			}
			for _, cfg := range tt.existing {
				if got := infos[cfg.Name].Config; got.MaxAge != cfg.MaxAge || !slices.Equal(got.Subjects, cfg.Subjects) {
					t.Errorf("stream %s changed: %+v", cfg.Name, got)
				}
			}
			if !isExisting(tt.existing, "REGISTRAR_STEPS") {
				steps := infos["REGISTRAR_STEPS"].Config
				if steps.Retention != jetstream.WorkQueuePolicy {
					t.Errorf("steps retention %v, want work queue", steps.Retention)
				}
				if steps.Duplicates != 5*time.Minute {
					t.Errorf("steps duplicate window %v, want 5m", steps.Duplicates)
				}
			}

			// Run again: nothing changes.
			if err := transport.ProvisionStreams(ctx, js, topo); err != nil {
				t.Fatalf("second ProvisionStreams: %v", err)
			}
			again := streamInfos(t, js)
			if len(again) != len(infos) {
				t.Errorf("%d streams after the second run, %d before", len(again), len(infos))
			}
			for name, info := range infos {
				a := again[name]
				if a == nil || !a.Created.Equal(info.Created) || !streamConfigEqual(a.Config, info.Config) {
					t.Errorf("stream %s changed by the second run:\n%+v\n%+v", name, info, a)
				}
			}
		})
	}
}

func isExisting(cfgs []jetstream.StreamConfig, name string) bool {
	return slices.ContainsFunc(cfgs, func(c jetstream.StreamConfig) bool { return c.Name == name })
}

func streamConfigEqual(a, b jetstream.StreamConfig) bool {
	return a.Name == b.Name && slices.Equal(a.Subjects, b.Subjects) && a.MaxAge == b.MaxAge &&
		a.Duplicates == b.Duplicates && a.Retention == b.Retention && a.Storage == b.Storage
}

func streamInfos(t *testing.T, js jetstream.JetStream) map[string]*jetstream.StreamInfo {
	t.Helper()
	infos := map[string]*jetstream.StreamInfo{}
	l := js.ListStreams(t.Context())
	for info := range l.Info() {
		infos[info.Config.Name] = info
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return infos
}

func TestProvisionConsumer(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	spec := transport.ConsumerSpec{
		Stream: e.topo.Commands, Durable: "intake", FilterSubject: transport.CommandSubjects,
		MaxAckPending: 16, AckWait: time.Minute,
	}
	if _, err := transport.ProvisionConsumer(ctx, e.js, spec); err != nil {
		t.Fatal(err)
	}
	// An acknowledged message moves the ack floor; a second provisioning
	// with other options updates them and keeps the floor.
	e.publish("x", 0, 1)
	c, err := e.js.Consumer(ctx, e.topo.Commands, "intake")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(waitFor))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	spec.MaxAckPending, spec.AckWait = 32, 2*time.Minute
	c, err = transport.ProvisionConsumer(ctx, e.js, spec)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	if cfg.Durable != "intake" || cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxAckPending != 32 ||
		cfg.AckWait != 2*time.Minute || cfg.FilterSubject != transport.CommandSubjects || cfg.MaxDeliver != -1 {
		t.Errorf("consumer config %+v", cfg)
	}
	if info.AckFloor.Stream != 1 {
		t.Errorf("ack floor %d after update, want 1", info.AckFloor.Stream)
	}
}

func TestNewSubscriberValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     transport.SubscriberConfig
		wantErr string
	}{
		{name: "no JetStream", cfg: transport.SubscriberConfig{Stream: "S"}, wantErr: "JetStream"},
		{name: "no stream", cfg: transport.SubscriberConfig{JetStream: fakeJS{}}, wantErr: "Stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transport.NewSubscriber(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// fakeJS only fills the JetStream field of a configuration that is
// rejected before it is used.
type fakeJS struct{ jetstream.JetStream }

func TestSubscribeUnknownConsumer(t *testing.T) {
	e := newEnv(t)
	sub := e.subscriber(4)
	if _, err := sub.Subscribe(t.Context(), "nobody"); err == nil {
		t.Fatal("Subscribe to a consumer that does not exist: no error")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(t.Context(), "nobody"); err == nil {
		t.Fatal("Subscribe after Close: no error")
	}
}

// TestInFlightBound: with InFlight = N and handlers that block, exactly N
// messages are in the handler at once, never more.
func TestInFlightBound(t *testing.T) {
	tests := []struct {
		name          string
		inFlight      int
		maxAckPending int // the consumer's
		messages      int
	}{
		{name: "consumer bound equals InFlight", inFlight: 8, maxAckPending: 8, messages: 40},
		// A misconfigured consumer hands out more: the subscriber's own
		// slots still bound the handlers.
		{name: "consumer allows more than InFlight", inFlight: 5, maxAckPending: 20, messages: 30},
		{name: "one at a time", inFlight: 1, maxAckPending: 1, messages: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			const consumer = "bound"
			e.consumer(consumer, tt.maxAckPending, time.Minute)
			ids := e.publish(consumer, 0, tt.messages)

			var (
				inHandler, maxSeen atomic.Int64
				overflow           = make(chan struct{}, 1)
				release            = make(chan struct{})
				seen               = newTally()
			)
			h := func(msg *message.Message) error {
				n := inHandler.Add(1)
				defer inHandler.Add(-1)
				for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
				}
				if n > int64(tt.inFlight) {
					select {
					case overflow <- struct{}{}:
					default:
					}
				}
				seen.add(msg)
				select {
				case <-release:
				case <-time.After(waitFor):
					return errors.New("never released")
				}
				return nil
			}
			r := runRouter(t, e.subscriber(tt.inFlight), consumer, h)

			// Let the handlers go one by one; each time, the next message
			// must take the freed slot and fill the bound again.
			for released := 0; released < tt.messages; released++ {
				want := int64(min(tt.inFlight, tt.messages-released))
				eventually(t, fmt.Sprintf("%d messages in the handler (%d released)", want, released), func() bool {
					return inHandler.Load() == want
				})
				if released == 0 {
					// The server handed the messages out (and more, when the
					// consumer allows more than InFlight): give an
					// unbounded subscriber the chance to show itself.
					eventually(t, "the server to hand out the messages in the handler", func() bool {
						return e.info(consumer).NumAckPending >= tt.inFlight
					})
					select {
					case <-overflow:
					case <-time.After(200 * time.Millisecond):
					}
				}
				release <- struct{}{}
			}
			eventually(t, "every message handled", func() bool { return seen.len() == tt.messages && inHandler.Load() == 0 })
			if m := maxSeen.Load(); m != int64(tt.inFlight) {
				t.Errorf("at most %d messages in the handler at once, want exactly %d", m, tt.inFlight)
			}
			e.settled(consumer, tt.messages)
			seen.once(t, ids)
			r.close()
		})
	}
}

// TestBacklogAtStartup: a backlog published before the router starts is
// worked through InFlight at a time, each message once: no message waits
// in a client buffer while its AckWait runs out.
func TestBacklogAtStartup(t *testing.T) {
	const (
		consumer = "backlog"
		messages = 500
		inFlight = 64
	)
	e := newEnv(t)
	// 500 messages × 20 ms one at a time would take 10 s: far past AckWait.
	e.consumer(consumer, inFlight, 3*time.Second)
	ids := e.publish(consumer, 0, messages)

	var inHandler, maxSeen atomic.Int64
	seen := newTally()
	r := runRouter(t, e.subscriber(inFlight), consumer, func(msg *message.Message) error {
		n := inHandler.Add(1)
		defer inHandler.Add(-1)
		for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
		}
		seen.add(msg)
		time.Sleep(20 * time.Millisecond) // a vendor call
		return nil
	})
	eventually(t, "the backlog handled", func() bool { return seen.len() == messages })
	e.settled(consumer, messages)
	seen.once(t, ids)
	if m := maxSeen.Load(); m > inFlight {
		t.Errorf("%d messages in the handler at once, InFlight is %d", m, inFlight)
	}
	t.Logf("at most %d messages in the handler at once", maxSeen.Load())
	r.close()
}

// TestHandlerErrorRedelivers: a handler error naks the message; it comes
// back with its delivery count incremented and the same metadata.
func TestHandlerErrorRedelivers(t *testing.T) {
	tests := []struct {
		name   string
		msgID  string // Nats-Msg-Id; empty: none
		header nats.Header
		// setDelay: the handler sets MetaNakDelay; otherwise the
		// subscriber's NakDelay decides.
		setDelay bool
	}{
		{name: "handler sets the delay", msgID: "cmd-1", setDelay: true, header: nats.Header{"Registrar-Tenant": {"acme"}, "Content-Type": {"application/json"}}},
		{name: "subscriber's NakDelay", msgID: "cmd-2", header: nats.Header{"Registrar-Tenant": {"acme"}}},
		{name: "no Nats-Msg-Id", setDelay: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			const consumer = "retry"
			e.consumer(consumer, 4, time.Minute)
			m := nats.NewMsg(subject(consumer))
			for k, vs := range tt.header {
				m.Header[k] = vs
			}
			if tt.msgID != "" {
				m.Header.Set(nats.MsgIdHdr, tt.msgID)
			}
			m.Data = []byte(`{"registrationId":"reg-1"}`)
			ack, err := e.js.PublishMsg(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}

			var nakDelayCalls atomic.Int64
			sub := e.subscriber(4, func(c *transport.SubscriberConfig) {
				c.NakDelay = func(delivered uint64) time.Duration {
					if delivered != 1 {
						t.Errorf("NakDelay(%d), want 1", delivered)
					}
					nakDelayCalls.Add(1)
					return 10 * time.Millisecond
				}
			})
			seen := newTally()
			var payloads sync.Map
			r := runRouter(t, sub, consumer, func(msg *message.Message) error {
				payloads.Store(msg.Metadata.Get(transport.MetaDelivered), string(msg.Payload))
				if seen.add(msg) == 1 {
					if tt.setDelay {
						msg.Metadata.Set(transport.MetaNakDelay, "10ms")
					}
					return errors.New("store unavailable")
				}
				return nil
			})
			eventually(t, "the redelivery", func() bool {
				seen.mu.Lock()
				defer seen.mu.Unlock()
				for _, n := range seen.seen {
					if n >= 2 {
						return true
					}
				}
				return false
			})
			eventually(t, "the ack", func() bool { return e.info(consumer).NumAckPending == 0 })
			r.close()

			wantUUID := tt.msgID
			if wantUUID == "" {
				wantUUID = fmt.Sprintf("%s-%d", e.topo.Commands, ack.Sequence)
			}
			if ids := seen.ids(); !slices.Equal(ids, []string{wantUUID}) {
				t.Fatalf("UUIDs %v, want [%s]", ids, wantUUID)
			}
			deliveries := seen.meta[wantUUID]
			if len(deliveries) != 2 {
				t.Fatalf("%d deliveries, want 2", len(deliveries))
			}
			for i, md := range deliveries {
				if got, want := md.Get(transport.MetaDelivered), strconv.Itoa(i+1); got != want {
					t.Errorf("delivery %d: %s = %q, want %q", i+1, transport.MetaDelivered, got, want)
				}
				if got := md.Get(transport.MetaSubject); got != subject(consumer) {
					t.Errorf("delivery %d: %s = %q", i+1, transport.MetaSubject, got)
				}
				if got, want := md.Get(transport.MetaStreamSeq), strconv.FormatUint(ack.Sequence, 10); got != want {
					t.Errorf("delivery %d: %s = %q, want %q", i+1, transport.MetaStreamSeq, got, want)
				}
				if _, err := time.Parse(time.RFC3339Nano, md.Get(transport.MetaPublishedAt)); err != nil {
					t.Errorf("delivery %d: %s: %v", i+1, transport.MetaPublishedAt, err)
				}
				for k := range tt.header {
					if got, want := md.Get(k), tt.header.Get(k); got != want {
						t.Errorf("delivery %d: header %s = %q, want %q", i+1, k, got, want)
					}
				}
				if tt.msgID != "" && md.Get(nats.MsgIdHdr) != tt.msgID {
					t.Errorf("delivery %d: %s = %q", i+1, nats.MsgIdHdr, md.Get(nats.MsgIdHdr))
				}
				if p, _ := payloads.Load(strconv.Itoa(i + 1)); p != string(m.Data) {
					t.Errorf("delivery %d: payload %v", i+1, p)
				}
			}
			if got, want := nakDelayCalls.Load(), map[bool]int64{true: 0, false: 1}[tt.setDelay]; got != want {
				t.Errorf("NakDelay called %d times, want %d", got, want)
			}
		})
	}
}

// TestCloseKeepsConsumerAndAckFloor: closing the router returns promptly,
// leaves the durable consumer in place (watermill#375), and a new router
// on it goes on from the ack floor.
func TestCloseKeepsConsumerAndAckFloor(t *testing.T) {
	const (
		consumer = "restart"
		messages = 200
		inFlight = 4
	)
	e := newEnv(t)
	// Messages that reach the client while it stops come back after
	// AckWait: keep it short so the second router gets them soon.
	e.consumer(consumer, inFlight, 2*time.Second)
	ids := e.publish(consumer, 0, messages)

	first := newTally()
	r := runRouter(t, e.subscriber(inFlight), consumer, func(msg *message.Message) error {
		first.add(msg)
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	eventually(t, "a part of the messages handled", func() bool { return first.len() >= 40 })
	r.close()
	handledFirst := first.ids()
	if len(handledFirst) == messages {
		t.Fatal("the first router handled everything before it was closed")
	}

	if _, err := e.js.Consumer(t.Context(), e.topo.Commands, consumer); err != nil {
		t.Fatalf("the durable consumer is gone after Close: %v", err)
	}

	second := newTally()
	r2 := runRouter(t, e.subscriber(inFlight), consumer, func(msg *message.Message) error {
		second.add(msg)
		return nil
	})
	eventually(t, "the rest handled", func() bool {
		return len(union(handledFirst, second.ids())) == messages
	})
	r2.close()
	for _, id := range second.ids() {
		if slices.Contains(handledFirst, id) {
			t.Errorf("%s was handled and acknowledged before the restart, and delivered again", id)
		}
	}
	if got := union(handledFirst, second.ids()); !slices.Equal(got, sorted(ids)) {
		t.Errorf("handled %d of %d messages", len(got), len(ids))
	}
	info := e.info(consumer)
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer: %d ack pending, %d pending", info.NumAckPending, info.NumPending)
	}
}

func union(a, b []string) []string {
	u := slices.Concat(a, b)
	slices.Sort(u)
	return slices.Compact(u)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestCancelRouterContext: cancelling the context given to Router.Run
// stops the router. Watermill relies on the subscriber for that: "when the
// provided ctx is canceled, the subscriber closes the subscription and the
// output channel".
func TestCancelRouterContext(t *testing.T) {
	const (
		consumer = "cancel"
		messages = 20
	)
	e := newEnv(t)
	e.consumer(consumer, 4, time.Minute)
	ids := e.publish(consumer, 0, messages)
	seen := newTally()
	sub := e.subscriber(4)
	r := runRouter(t, sub, consumer, func(msg *message.Message) error {
		seen.add(msg)
		return nil
	})
	eventually(t, "every message handled", func() bool { return seen.len() == messages })
	e.settled(consumer, messages)
	seen.once(t, ids)

	r.cancel()
	r.wait()
	if err := sub.Close(); err != nil {
		t.Fatalf("subscriber Close after the router stopped: %v", err)
	}
	if _, err := e.js.Consumer(t.Context(), e.topo.Commands, consumer); err != nil {
		t.Fatalf("the durable consumer is gone: %v", err)
	}
}

// TestSharedSubscriber: one Subscriber serves several consumers (as the
// step handlers share one); closing the router closes them all.
func TestSharedSubscriber(t *testing.T) {
	e := newEnv(t)
	consumers := []string{"step-a", "step-b", "step-c"}
	var ids []string
	for _, c := range consumers {
		e.consumer(c, 4, time.Minute)
		ids = append(ids, e.publish(c, 0, 10)...)
	}
	sub := e.subscriber(4)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: routerCloseTimeout}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	seen := newTally()
	for _, c := range consumers {
		router.AddConsumerHandler(c, c, sub, func(msg *message.Message) error {
			if got := msg.Metadata.Get(transport.MetaSubject); got != subject(c) {
				t.Errorf("handler %s got a message of %s", c, got)
			}
			seen.add(msg)
			return nil
		})
	}
	r := &running{t: t, router: router, done: make(chan error, 1)}
	go func() { r.done <- router.Run(context.WithoutCancel(t.Context())) }()
	t.Cleanup(func() { _ = router.Close() })
	eventually(t, "every message handled", func() bool { return seen.len() == len(ids) })
	for _, c := range consumers {
		e.settled(c, 10)
	}
	seen.once(t, ids)
	r.close()
}

// TestLongHandlerKeptAlive: a handler that runs past the consumer's
// AckWait is not redelivered: the subscriber sends InProgress.
func TestLongHandlerKeptAlive(t *testing.T) {
	const (
		consumer = "slow"
		messages = 3
	)
	e := newEnv(t)
	e.consumer(consumer, 4, time.Second)
	ids := e.publish(consumer, 0, messages)
	seen := newTally()
	var done atomic.Int64
	r := runRouter(t, e.subscriber(4), consumer, func(msg *message.Message) error {
		seen.add(msg)
		time.Sleep(2500 * time.Millisecond) // 2.5 × AckWait
		done.Add(1)
		return nil
	})
	eventually(t, "the slow handlers done", func() bool { return done.Load() >= messages })
	e.settled(consumer, messages)
	seen.once(t, ids)
	r.close()
}
