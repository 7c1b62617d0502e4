package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/sqlite"
	"github.com/registrar-dev/registrar/transport"
)

// waitFor is how long a test waits for something that should happen at
// once: generous, the machine is small and busy.
const waitFor = 30 * time.Second

// testStream is the stream every test publishes to.
const testStream = "OUTBOX_TEST"

// startNATS starts an embedded JetStream server with a stream on
// subjects (1 minute duplicate window) and returns a JetStream context.
func startNATS(tb testing.TB, subjects ...string) jetstream.JetStream {
	tb.Helper()
	ns, err := transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	js := connect(tb, ns.ClientURL())
	_, err = js.CreateStream(tb.Context(), jetstream.StreamConfig{
		Name:       testStream,
		Subjects:   subjects,
		Storage:    jetstream.FileStorage,
		Duplicates: time.Minute,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// connect opens a connection of its own (as another process would).
func connect(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// streamMsgs returns the messages of the test stream in stream order.
func streamMsgs(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// streamCount is how many messages the test stream holds.
func streamCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
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

// memSource is an in-memory outbox.Source.
type memSource struct {
	mu          sync.Mutex
	recs        []outbox.Record
	next        int64
	reads       int
	failDeletes int // DeleteOutbox fails this many more times
}

var errDeleteFailed = errors.New("delete failed: database is away")

func (s *memSource) Append(msgs ...outbox.Message) []outbox.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var added []outbox.Record
	for _, m := range msgs {
		s.next++
		r := outbox.Record{Seq: s.next, CreatedAt: time.Now(), Message: m}
		s.recs = append(s.recs, r)
		added = append(added, r)
	}
	return added
}

func (s *memSource) PendingOutbox(_ context.Context, limit int) ([]outbox.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	n := min(limit, len(s.recs))
	return slices.Clone(s.recs[:n]), nil
}

func (s *memSource) DeleteOutbox(_ context.Context, seqs []int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failDeletes > 0 {
		s.failDeletes--
		return errDeleteFailed
	}
	s.recs = slices.DeleteFunc(s.recs, func(r outbox.Record) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

// IDs returns the IDs of the records still in the outbox, in order.
func (s *memSource) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.recs))
	for i, r := range s.recs {
		ids[i] = r.ID
	}
	return ids
}

func (s *memSource) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *memSource) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// memLeaser is an in-memory outbox.Leaser.
type memLeaser struct {
	mu       sync.Mutex
	holders  map[string]string // lease name → holder
	expires  map[string]time.Time
	acquires int
}

func newMemLeaser() *memLeaser {
	return &memLeaser{holders: map[string]string{}, expires: map[string]time.Time{}}
}

func (l *memLeaser) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acquires++
	now := time.Now()
	if h := l.holders[name]; h != "" && h != holder && now.Before(l.expires[name]) {
		return false, nil
	}
	l.holders[name], l.expires[name] = holder, now.Add(ttl)
	return true, nil
}

func (l *memLeaser) ReleaseLease(_ context.Context, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holders[name] == holder {
		delete(l.holders, name)
		delete(l.expires, name)
	}
	return nil
}

func (l *memLeaser) Holder(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holders[name]
}

func (l *memLeaser) Acquires() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquires
}

// failMode says how fakePublisher fails a publish.
type failMode int

const (
	failAtOnce   failMode = iota + 1 // PublishMsgAsync returns an error
	failOnServer                     // the future reports an error
	failNoAck                        // the future never answers
)

var errPublish = errors.New("publish refused")

// fakePublisher wraps the real JetStream publisher: it counts publishes by
// Nats-Msg-Id and fails the ones it is told to, once each.
type fakePublisher struct {
	outbox.Publisher
	mu     sync.Mutex
	fail   map[string]failMode
	counts map[string]int
	calls  int
}

func newFakePublisher(p outbox.Publisher, fail map[string]failMode) *fakePublisher {
	if fail == nil {
		fail = map[string]failMode{}
	}
	return &fakePublisher{Publisher: p, fail: fail, counts: map[string]int{}}
}

func (p *fakePublisher) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	p.mu.Lock()
	p.calls++
	p.counts[id]++
	mode := p.fail[id]
	delete(p.fail, id)
	p.mu.Unlock()
	switch mode {
	case failAtOnce:
		return nil, errPublish
	case failOnServer:
		errc := make(chan error, 1)
		errc <- errPublish
		return failedFuture{msg: m, errc: errc}, nil
	case failNoAck:
		return failedFuture{msg: m}, nil
	}
	return p.Publisher.PublishMsgAsync(m, opts...)
}

func (p *fakePublisher) Count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[id]
}

func (p *fakePublisher) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type failedFuture struct {
	msg  *nats.Msg
	errc chan error
}

func (f failedFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f failedFuture) Err() <-chan error            { return f.errc }
func (f failedFuture) Msg() *nats.Msg               { return f.msg }

// keyedMessages returns perKey messages for each of keys, interleaved:
// k0-0 k1-0 … k0-1 k1-1 …, on subject prefix.<key>.
func keyedMessages(prefix string, keys []string, perKey int) []outbox.Message {
	var msgs []outbox.Message
	for i := range perKey {
		for _, k := range keys {
			msgs = append(msgs, outbox.Message{
				ID:      fmt.Sprintf("%s-%d", k, i),
				Subject: prefix + "." + k,
				Key:     k,
				Headers: map[string]string{"Registrar-Position": fmt.Sprint(i)},
				Payload: fmt.Appendf(nil, `{"key":%q,"i":%d}`, k, i),
			})
		}
	}
	return msgs
}

func keyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("reg%03d", i)
	}
	return keys
}

// checkOrder checks that the stream holds every record of recs exactly
// once and the records of each key in Seq order.
func checkOrder(t *testing.T, msgs []*jetstream.RawStreamMsg, recs []outbox.Record) {
	t.Helper()
	byID := make(map[string]outbox.Record, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	seen := make(map[string]bool, len(msgs))
	last := make(map[string]int64) // key → Seq of the last record seen
	for _, m := range msgs {
		id := m.Header.Get(nats.MsgIdHdr)
		r, ok := byID[id]
		if !ok {
			t.Errorf("stream seq %d: unexpected message %q", m.Sequence, id)
			continue
		}
		if seen[id] {
			t.Errorf("stream seq %d: %q twice on the stream", m.Sequence, id)
		}
		seen[id] = true
		if prev, ok := last[r.Key]; ok && r.Seq < prev {
			t.Errorf("key %s: record seq %d (%s) after seq %d", r.Key, r.Seq, id, prev)
		}
		last[r.Key] = r.Seq
	}
	for _, r := range recs {
		if !seen[r.ID] {
			t.Errorf("%s (seq %d) is not on the stream", r.ID, r.Seq)
		}
	}
}

func newForwarder(t testing.TB, cfg outbox.Config) *outbox.Forwarder {
	t.Helper()
	f, err := outbox.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNewForwarderValidates(t *testing.T) {
	src := &memSource{}
	tests := []struct {
		name    string
		cfg     outbox.Config
		wantErr string
	}{
		{name: "no source", cfg: outbox.Config{Publisher: newFakePublisher(nil, nil)}, wantErr: "Source"},
		{name: "no publisher", cfg: outbox.Config{Source: src}, wantErr: "Publisher"},
		{name: "leaser without holder", cfg: outbox.Config{Source: src, Publisher: newFakePublisher(nil, nil), Leaser: newMemLeaser()}, wantErr: "Holder"},
		{name: "ok", cfg: outbox.Config{Source: src, Publisher: newFakePublisher(nil, nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := outbox.NewForwarder(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestRoundPublishesAndDeletes(t *testing.T) {
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name      string
		batchSize int
		msgs      []outbox.Message
		wantRound int // records Round reads (and publishes)
	}{
		{
			name:      "one record",
			msgs:      []outbox.Message{{ID: "evt-1", Subject: "registration.evt.completed", Key: "reg-1", Payload: []byte(`{"ok":true}`)}},
			wantRound: 1,
		},
		{
			name: "headers and binary payload",
			msgs: []outbox.Message{{
				ID: "evt-2", Subject: "registration.evt.failed", Key: "reg-2",
				Headers: map[string]string{"Content-Type": "application/json", "Registrar-Command-Msg-Id": "cmd-9", "lower-case": "kept as is"},
				Payload: binary,
			}},
			wantRound: 1,
		},
		{
			name:      "no payload, no key",
			msgs:      []outbox.Message{{ID: "step-1", Subject: "registrar.step.resamania.lookup"}},
			wantRound: 1,
		},
		{
			name: "a Nats-Msg-Id header is replaced by the ID",
			msgs: []outbox.Message{{
				ID: "evt-3", Subject: "registration.evt.completed", Key: "reg-3",
				Headers: map[string]string{nats.MsgIdHdr: "something else"},
			}},
			wantRound: 1,
		},
		{
			name:      "several keys",
			msgs:      keyedMessages("registration.evt", keyNames(5), 3),
			wantRound: 15,
		},
		{
			name:      "more than a batch",
			batchSize: 4,
			msgs:      keyedMessages("registration.evt", keyNames(3), 3),
			wantRound: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>", "registrar.step.>")
			src := &memSource{}
			recs := src.Append(tt.msgs...)
			f := newForwarder(t, outbox.Config{Source: src, Publisher: js, BatchSize: tt.batchSize})

			n, err := f.Round(t.Context())
			if err != nil {
				t.Fatalf("Round: %v", err)
			}
			if n != tt.wantRound {
				t.Errorf("Round = %d, want %d", n, tt.wantRound)
			}

			sent := recs[:tt.wantRound]
			msgs := streamMsgs(t, js)
			if len(msgs) != len(sent) {
				t.Fatalf("stream holds %d messages, want %d", len(msgs), len(sent))
			}
			byID := make(map[string]*jetstream.RawStreamMsg)
			for _, m := range msgs {
				byID[m.Header.Get(nats.MsgIdHdr)] = m
			}
			for _, r := range sent {
				m, ok := byID[r.ID]
				if !ok {
					t.Errorf("%s: not on the stream with Nats-Msg-Id = ID", r.ID)
					continue
				}
				if m.Subject != r.Subject {
					t.Errorf("%s: subject %q, want %q", r.ID, m.Subject, r.Subject)
				}
				if !bytes.Equal(m.Data, r.Payload) {
					t.Errorf("%s: payload %q, want %q", r.ID, m.Data, r.Payload)
				}
				for k, v := range r.Headers {
					if k == nats.MsgIdHdr {
						continue
					}
					if got := m.Header.Get(k); got != v {
						t.Errorf("%s: header %s = %q, want %q", r.ID, k, got, v)
					}
				}
				if got := len(m.Header.Values(nats.MsgIdHdr)); got != 1 {
					t.Errorf("%s: %d Nats-Msg-Id values", r.ID, got)
				}
			}

			var wantLeft []string
			for _, r := range recs[tt.wantRound:] {
				wantLeft = append(wantLeft, r.ID)
			}
			if got := src.IDs(); !slices.Equal(got, wantLeft) {
				t.Errorf("left in the outbox %v, want %v", got, wantLeft)
			}
		})
	}
}

func TestRoundEmptyOutbox(t *testing.T) {
	js := startNATS(t, "registration.evt.>")
	pub := newFakePublisher(js, nil)
	f := newForwarder(t, outbox.Config{Source: &memSource{}, Publisher: pub})
	n, err := f.Round(t.Context())
	if n != 0 || err != nil {
		t.Fatalf("Round = %d, %v; want 0, nil", n, err)
	}
	if c := pub.Calls(); c != 0 {
		t.Errorf("%d publishes", c)
	}
}

func TestRoundKeepsOrderPerKey(t *testing.T) {
	tests := []struct {
		name      string
		keys      int
		perKey    int
		batchSize int
	}{
		{name: "one round", keys: 40, perKey: 8, batchSize: 500},
		{name: "keys split across rounds", keys: 40, perKey: 8, batchSize: 37},
		{name: "one key", keys: 1, perKey: 50, batchSize: 500},
		{name: "one record per key", keys: 300, perKey: 1, batchSize: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>")
			msgs := keyedMessages("registration.evt", keyNames(tt.keys), tt.perKey)
			// Interleave the keys unevenly, keeping each key's order.
			rng := rand.New(rand.NewPCG(1, 2))
			perKey := make(map[string][]outbox.Message)
			var order []string
			for _, m := range msgs {
				perKey[m.Key] = append(perKey[m.Key], m)
				order = append(order, m.Key)
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			msgs = msgs[:0]
			for _, k := range order {
				msgs = append(msgs, perKey[k][0])
				perKey[k] = perKey[k][1:]
			}

			src := &memSource{}
			recs := src.Append(msgs...)
			f := newForwarder(t, outbox.Config{Source: src, Publisher: js, BatchSize: tt.batchSize})
			for rounds := 0; src.Len() > 0; rounds++ {
				if rounds > len(recs) {
					t.Fatalf("%d rounds and %d records left", rounds, src.Len())
				}
				if _, err := f.Round(t.Context()); err != nil {
					t.Fatalf("Round: %v", err)
				}
			}
			checkOrder(t, streamMsgs(t, js), recs)
		})
	}
}

func TestRoundFailureHoldsBackItsKey(t *testing.T) {
	keys := []string{"a", "b", "c"}
	tests := []struct {
		name string
		// failing is the record that cannot be published in the first round.
		failing string
		// unrouted: the failing record goes to a subject no stream covers
		// (the server has no responder); otherwise the publisher fails it.
		unrouted bool
		mode     failMode
		// heldBack are the records left in the outbox after the first round.
		heldBack []string
	}{
		{name: "no stream covers the subject", failing: "a-1", unrouted: true, heldBack: []string{"a-1", "a-2", "a-3"}},
		{name: "publish fails at once", failing: "a-1", mode: failAtOnce, heldBack: []string{"a-1", "a-2", "a-3"}},
		{name: "server answers with an error", failing: "a-1", mode: failOnServer, heldBack: []string{"a-1", "a-2", "a-3"}},
		{name: "first record of a key", failing: "b-0", mode: failOnServer, heldBack: []string{"b-0", "b-1", "b-2", "b-3"}},
		{name: "last record of a key", failing: "c-3", mode: failAtOnce, heldBack: []string{"c-3"}},
		// The other keys' acknowledgements of that wave are there when the
		// timeout fires: they count as sent.
		{name: "no acknowledgement in time", failing: "a-1", mode: failNoAck, heldBack: []string{"a-1", "a-2", "a-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>")
			msgs := keyedMessages("registration.evt", keys, 4)
			for i := range msgs {
				if tt.unrouted && msgs[i].ID == tt.failing {
					msgs[i].Subject = "unrouted." + msgs[i].Key
				}
			}
			var fail map[string]failMode
			if !tt.unrouted {
				fail = map[string]failMode{tt.failing: tt.mode}
			}
			pub := newFakePublisher(js, fail)
			src := &memSource{}
			recs := src.Append(msgs...)
			cfg := outbox.Config{Source: src, Publisher: pub}
			if tt.mode == failNoAck {
				cfg.PublishTimeout = 300 * time.Millisecond
			}
			f := newForwarder(t, cfg)

			n, err := f.Round(t.Context())
			if err == nil {
				t.Fatal("Round: no error")
			}
			if n != len(recs) {
				t.Errorf("Round = %d, want %d", n, len(recs))
			}
			// Held-back records were not even tried.
			for _, id := range tt.heldBack[1:] {
				if c := pub.Count(id); c != 0 {
					t.Errorf("%s published %d times after an earlier record of its key failed", id, c)
				}
			}
			if got := src.IDs(); !slices.Equal(got, tt.heldBack) {
				t.Fatalf("left in the outbox %v, want %v", got, tt.heldBack)
			}
			var sent []outbox.Record
			for _, r := range recs {
				if !slices.Contains(tt.heldBack, r.ID) {
					sent = append(sent, r)
				}
			}
			checkOrder(t, streamMsgs(t, js), sent)

			if tt.unrouted {
				// Someone adds the missing subject to the stream.
				s, err := js.Stream(t.Context(), testStream)
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.Subjects = append(cfg.Subjects, "unrouted.>")
				if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
					t.Fatal(err)
				}
			}
			n, err = f.Round(t.Context())
			if err != nil {
				t.Fatalf("second Round: %v", err)
			}
			if n != len(tt.heldBack) {
				t.Errorf("second Round = %d, want %d", n, len(tt.heldBack))
			}
			if left := src.IDs(); len(left) != 0 {
				t.Errorf("left in the outbox %v", left)
			}
			checkOrder(t, streamMsgs(t, js), recs)
		})
	}
}

// errCrash stands for the process dying at a fault point.
var errCrash = errors.New("crash")

func TestRepublishAfterCrashIsDeduplicated(t *testing.T) {
	tests := []struct {
		name string
		// setup makes the first round stop between publish and delete.
		setup func(src *memSource, cfg *outbox.Config)
	}{
		{
			name:  "delete fails",
			setup: func(src *memSource, _ *outbox.Config) { src.failDeletes = 1 },
		},
		{
			name: "process dies after publish",
			setup: func(_ *memSource, cfg *outbox.Config) {
				crashed := false
				cfg.FaultHook = func(point string, _ []outbox.Record) {
					if point == outbox.FaultAfterPublish && !crashed {
						crashed = true
						panic(errCrash)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>")
			src := &memSource{}
			recs := src.Append(keyedMessages("registration.evt", keyNames(10), 5)...)
			pub := newFakePublisher(js, nil)
			cfg := outbox.Config{Source: src, Publisher: pub}
			tt.setup(src, &cfg)
			f := newForwarder(t, cfg)

			func() {
				defer func() {
					if r := recover(); r != nil && r != errCrash {
						panic(r)
					}
				}()
				if _, err := f.Round(t.Context()); err == nil {
					t.Error("first Round: no error")
				}
			}()
			if got := src.Len(); got != len(recs) {
				t.Fatalf("%d records left after the crash, want %d", got, len(recs))
			}
			if got := streamCount(t, js); got != uint64(len(recs)) {
				t.Fatalf("stream holds %d messages after the first round, want %d", got, len(recs))
			}

			n, err := f.Round(t.Context())
			if err != nil {
				t.Fatalf("second Round: %v", err)
			}
			if n != len(recs) {
				t.Errorf("second Round = %d, want %d", n, len(recs))
			}
			for _, r := range recs {
				if c := pub.Count(r.ID); c != 2 {
					t.Errorf("%s published %d times, want 2", r.ID, c)
				}
			}
			if got := src.Len(); got != 0 {
				t.Errorf("%d records left", got)
			}
			if got := streamCount(t, js); got != uint64(len(recs)) {
				t.Errorf("stream holds %d messages, want %d: duplicates were not dropped", got, len(recs))
			}
			checkOrder(t, streamMsgs(t, js), recs)
		})
	}
}

func TestFaultHook(t *testing.T) {
	type call struct {
		point string
		ids   []string
	}
	tests := []struct {
		name      string
		msgs      []outbox.Message
		fail      map[string]failMode
		wantCalls func(ids []string) []call
	}{
		{
			name: "all published",
			msgs: keyedMessages("registration.evt", keyNames(3), 2),
			wantCalls: func(ids []string) []call {
				return []call{{outbox.FaultBeforePublish, ids}, {outbox.FaultAfterPublish, ids}}
			},
		},
		{
			name: "some published",
			msgs: keyedMessages("registration.evt", keyNames(3), 2),
			fail: map[string]failMode{"reg000-0": failOnServer},
			wantCalls: func(ids []string) []call {
				return []call{{outbox.FaultBeforePublish, ids}, {outbox.FaultAfterPublish, ids}}
			},
		},
		{
			name: "none published",
			msgs: keyedMessages("registration.evt", keyNames(2), 1),
			fail: map[string]failMode{"reg000-0": failAtOnce, "reg001-0": failOnServer},
			wantCalls: func(ids []string) []call {
				return []call{{outbox.FaultBeforePublish, ids}}
			},
		},
		{
			name:      "empty outbox",
			wantCalls: func([]string) []call { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>")
			src := &memSource{}
			recs := src.Append(tt.msgs...)
			var ids []string
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			var calls []call
			f := newForwarder(t, outbox.Config{
				Source:    src,
				Publisher: newFakePublisher(js, tt.fail),
				FaultHook: func(point string, recs []outbox.Record) {
					c := call{point: point}
					for _, r := range recs {
						c.ids = append(c.ids, r.ID)
					}
					// Before publishing nothing is on the stream; after,
					// the records are there and still in the outbox.
					switch point {
					case outbox.FaultBeforePublish:
						if n := streamCount(t, js); n != 0 {
							t.Errorf("%s: %d messages on the stream", point, n)
						}
					case outbox.FaultAfterPublish:
						if n := streamCount(t, js); n == 0 {
							t.Errorf("%s: nothing on the stream", point)
						}
						if n := src.Len(); n != len(recs) {
							t.Errorf("%s: %d records in the outbox, want %d", point, n, len(recs))
						}
					}
					calls = append(calls, c)
				},
			})
			_, _ = f.Round(t.Context())
			want := tt.wantCalls(ids)
			if len(calls) != len(want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
			for i := range want {
				if calls[i].point != want[i].point || !slices.Equal(calls[i].ids, want[i].ids) {
					t.Errorf("call %d: %v, want %v", i, calls[i], want[i])
				}
			}
		})
	}
}

// runForwarder runs f until the test ends and checks Run returns nil.
func runForwarder(t *testing.T, f *outbox.Forwarder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestRunOnlyTheLeaseHolderForwards(t *testing.T) {
	const lease = "outbox-forwarder"
	js := startNATS(t, "registration.evt.>")
	src := &memSource{}
	recs := src.Append(keyedMessages("registration.evt", keyNames(5), 3)...)
	leaser := newMemLeaser()
	if ok, _ := leaser.AcquireLease(t.Context(), lease, "other-instance", time.Hour); !ok {
		t.Fatal("cannot take the lease")
	}
	pub := newFakePublisher(js, nil)
	f := newForwarder(t, outbox.Config{
		Source: src, Publisher: pub, Leaser: leaser, Holder: "this-instance",
		PollInterval: 10 * time.Millisecond,
	})
	stop := runForwarder(t, f)

	// While another instance holds the lease, nothing is read or sent.
	eventually(t, "several lease attempts", func() bool { return leaser.Acquires() >= 6 })
	if c := pub.Calls(); c != 0 {
		t.Fatalf("%d publishes without the lease", c)
	}
	if r := src.Reads(); r != 0 {
		t.Fatalf("%d outbox reads without the lease", r)
	}

	// The other instance goes away.
	if err := leaser.ReleaseLease(t.Context(), lease, "other-instance"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outbox to drain", func() bool { return src.Len() == 0 })
	if h := leaser.Holder(lease); h != "this-instance" {
		t.Errorf("lease held by %q", h)
	}
	checkOrder(t, streamMsgs(t, js), recs)

	stop()
	if h := leaser.Holder(lease); h != "" {
		t.Errorf("lease still held by %q after Run returned", h)
	}
}

// TestRunTwoForwarders runs two forwarders, as two instances would, on one
// SQLite store (the outbox and the lease) and appends records while they
// run.
func TestRunTwoForwarders(t *testing.T) {
	ctx := t.Context()
	js := startNATS(t, "registration.evt.>")
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	var (
		pubs  []*fakePublisher
		fwds  []*outbox.Forwarder
		stops []func()
	)
	for i := range 2 {
		pub := newFakePublisher(js, nil)
		f := newForwarder(t, outbox.Config{
			Source: st, Publisher: pub, Leaser: st, Holder: fmt.Sprintf("instance-%d", i),
			PollInterval: 20 * time.Millisecond, BatchSize: 50,
		})
		pubs = append(pubs, pub)
		fwds = append(fwds, f)
		stops = append(stops, runForwarder(t, f))
	}

	keys := keyNames(20)
	var msgs []outbox.Message
	for batch := range 10 {
		var b []outbox.Message
		for _, k := range keys {
			b = append(b, outbox.Message{
				ID: fmt.Sprintf("%s-%d", k, batch), Subject: "registration.evt." + k, Key: k,
				Payload: fmt.Appendf(nil, "%s %d", k, batch),
			})
		}
		err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Enqueue(ctx, b...) })
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b...)
		for _, f := range fwds {
			f.Notify()
		}
	}
	eventually(t, "every record on the stream", func() bool { return streamCount(t, js) >= uint64(len(msgs)) })
	eventually(t, "the outbox to drain", func() bool {
		n, _, err := st.OutboxStats(ctx)
		return err == nil && n == 0
	})
	for _, stop := range stops {
		stop()
	}

	// Each record was published once, by one instance: only the holder of
	// the lease forwards.
	var recs []outbox.Record
	for i, m := range msgs {
		recs = append(recs, outbox.Record{Seq: int64(i), Message: m})
		if c := pubs[0].Count(m.ID) + pubs[1].Count(m.ID); c != 1 {
			t.Errorf("%s published %d times", m.ID, c)
		}
	}
	if pubs[0].Calls() != 0 && pubs[1].Calls() != 0 {
		t.Errorf("both instances published: %d and %d", pubs[0].Calls(), pubs[1].Calls())
	}
	checkOrder(t, streamMsgs(t, js), recs)
}

func TestRunNotifyWakesTheForwarder(t *testing.T) {
	tests := []struct {
		name   string
		leaser bool
	}{
		{name: "single instance"},
		{name: "with a lease", leaser: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startNATS(t, "registration.evt.>")
			src := &memSource{}
			cfg := outbox.Config{
				Source: src, Publisher: js,
				// Far longer than the test waits: only Notify can wake it.
				PollInterval: time.Hour,
			}
			if tt.leaser {
				cfg.Leaser, cfg.Holder = newMemLeaser(), "this-instance"
			}
			f := newForwarder(t, cfg)
			runForwarder(t, f)
			// Run reads once at start.
			eventually(t, "the first round", func() bool { return src.Reads() >= 1 })

			var recs []outbox.Record
			for batch := range 3 {
				msgs := keyedMessages("registration.evt", keyNames(4), 2)
				for i := range msgs {
					msgs[i].ID = fmt.Sprintf("b%d-%s", batch, msgs[i].ID)
				}
				recs = append(recs, src.Append(msgs...)...)
				f.Notify()
				eventually(t, fmt.Sprintf("batch %d on the stream", batch), func() bool {
					return streamCount(t, js) == uint64(len(recs))
				})
			}
			eventually(t, "the outbox to drain", func() bool { return src.Len() == 0 })
			checkOrder(t, streamMsgs(t, js), recs)
		})
	}
}

// BenchmarkRound measures one forwarder round of 500 records of 1 KiB
// (100 registrations with 5 records each) against the embedded server.
func BenchmarkRound(b *testing.B) {
	const perRound, perKey = 500, 5
	js := startNATS(b, "registration.evt.>")
	src := &memSource{}
	f := newForwarder(b, outbox.Config{Source: src, Publisher: js, BatchSize: perRound})
	payload := bytes.Repeat([]byte("x"), 1024)
	keys := keyNames(perRound / perKey)
	round := 0
	b.SetBytes(perRound * int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		msgs := make([]outbox.Message, 0, perRound)
		for i := range perKey {
			for _, k := range keys {
				msgs = append(msgs, outbox.Message{
					ID: fmt.Sprintf("r%d-%s-%d", round, k, i), Subject: "registration.evt." + k, Key: k,
					Headers: map[string]string{"Content-Type": "application/json"}, Payload: payload,
				})
			}
		}
		src.Append(msgs...)
		round++
		b.StartTimer()
		n, err := f.Round(b.Context())
		if err != nil || n != perRound {
			b.Fatalf("Round = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(round*perRound)/b.Elapsed().Seconds(), "msgs/s")
}
