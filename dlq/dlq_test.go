package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/dlq"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/transport/natstest"
)

const (
	registerSubject = "registration.cmd.resamania.register"
	lookupSubject   = "registrar.step.resamania.lookup"
)

type env struct {
	js   jetstream.JetStream
	topo transport.Topology
	c    *dlq.Client
}

// newEnv starts an embedded JetStream server with registrar's streams.
func newEnv(t *testing.T) *env {
	t.Helper()
	n := natstest.Start(t)
	return &env{js: n.JS, topo: n.Topo, c: dlq.New(n.JS, n.Topo.DeadLetters)}
}

// letter describes a synthetic dead letter.
type letter struct {
	handler, flow, code, reg, tenant, reason string
	subject                                  string // original subject; default registerSubject
	body                                     string
	at                                       time.Time // dead-lettered at; default now
	header                                   map[string]string
}

// msg builds the dead-letter message as the handlers' runtime writes it.
func (l letter) msg(i int) *nats.Msg {
	if l.handler == "" {
		l.handler = "resamania.register"
	}
	if l.subject == "" {
		l.subject = registerSubject
	}
	if l.body == "" {
		l.body = fmt.Sprintf(`{"registrationId":%q,"tenant":"acme"}`, l.reg)
	}
	if l.at.IsZero() {
		l.at = time.Now().UTC()
	}
	m := nats.NewMsg("registration.dlq." + l.handler)
	m.Data = []byte(l.body)
	h := map[string]string{
		handlers.HeaderOriginalSubject: l.subject,
		handlers.HeaderOriginalMsgID:   "orig-" + strconv.Itoa(i) + "-" + l.reg,
		handlers.HeaderReason:          l.reason,
		handlers.HeaderHandler:         l.handler,
		handlers.HeaderErrorCode:       l.code,
		handlers.HeaderAttempts:        "3",
		handlers.HeaderDeliveries:      "4",
		handlers.HeaderFirstFailure:    l.at.Add(-time.Minute).Format(time.RFC3339Nano),
		handlers.HeaderLastFailure:     l.at.Add(-time.Second).Format(time.RFC3339Nano),
		handlers.HeaderDeadLetteredAt:  l.at.Format(time.RFC3339Nano),
		handlers.HeaderFlow:            l.flow,
		handlers.HeaderRegistrationID:  l.reg,
		handlers.HeaderTenant:          l.tenant,
		"Content-Type":                 "application/json",
		nats.MsgIdHdr:                  "dlq:orig-" + strconv.Itoa(i) + "-" + l.reg + "-" + strconv.FormatInt(time.Now().UnixNano(), 10),
	}
	for k, v := range l.header {
		h[k] = v
	}
	for k, v := range h {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	return m
}

// publish writes the dead letters and returns their sequences.
func (e *env) publish(t *testing.T, ls ...letter) []uint64 {
	t.Helper()
	var seqs []uint64
	for i, l := range ls {
		ack, err := e.js.PublishMsg(t.Context(), l.msg(i))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != e.topo.DeadLetters {
			t.Fatalf("published to stream %s", ack.Stream)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func (e *env) stream(t *testing.T, name string) jetstream.Stream {
	t.Helper()
	s, err := e.js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// count returns the number of messages in the stream.
func (e *env) count(t *testing.T, name string) uint64 {
	t.Helper()
	info, err := e.stream(t, name).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func seqsOf(dls []dlq.DeadLetter) []uint64 {
	out := []uint64{}
	for _, d := range dls {
		out = append(out, d.Seq)
	}
	return out
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	old := time.Now().UTC().Add(-3 * time.Hour)
	seqs := e.publish(t,
		letter{flow: "resamania.register", handler: "resamania.lookup", code: "vendor_unavailable", reg: "r1", tenant: "acme", reason: "503", at: old, subject: lookupSubject},
		letter{flow: "resamania.register", handler: "resamania.lookup", code: "vendor_unavailable", reg: "r2", tenant: "acme", reason: "503", subject: lookupSubject},
		letter{flow: "marta.signup", handler: "marta.signup", code: "internal", reg: "r3", tenant: "beta", reason: "boom"},
		letter{flow: "resamania.register", handler: "resamania.lookup", code: "vendor_unavailable", reg: "r4", tenant: "beta", reason: "timeout", subject: lookupSubject},
		letter{flow: "marta.signup", handler: "marta.signup", code: "panic", reg: "r5", tenant: "acme", reason: "panic: nil map"},
		letter{handler: "intake", code: "poison", reason: "undecodable"},
	)
	// Gaps: delete the second and the last.
	s := e.stream(t, e.topo.DeadLetters)
	for _, seq := range []uint64{seqs[1], seqs[5]} {
		if err := s.DeleteMsg(t.Context(), seq); err != nil {
			t.Fatal(err)
		}
	}

	all, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(seqsOf(all)), fmt.Sprint([]uint64{seqs[0], seqs[2], seqs[3], seqs[4]}); got != want {
		t.Fatalf("List: seqs %s, want %s", got, want)
	}
	d := all[0]
	if d.Subject != "registration.dlq.resamania.lookup" || d.OriginalSubject != lookupSubject || d.Flow != "resamania.register" ||
		d.Handler != "resamania.lookup" || d.Code != "vendor_unavailable" || d.RegistrationID != "r1" || d.Tenant != "acme" ||
		d.Reason != "503" || d.Attempts != 3 || d.Deliveries != 4 || d.OriginalMsgID != "orig-0-r1" {
		t.Errorf("first dead letter read as %+v", d)
	}
	if !d.DeadLetteredAt.Equal(old) || !d.FirstFailure.Equal(old.Add(-time.Minute)) || !d.LastFailure.Equal(old.Add(-time.Second)) {
		t.Errorf("times: dead-lettered %v first %v last %v, want %v", d.DeadLetteredAt, d.FirstFailure, d.LastFailure, old)
	}
	if d.Stored.IsZero() || string(d.Body) != `{"registrationId":"r1","tenant":"acme"}` || d.Header.Get("Content-Type") != "application/json" {
		t.Errorf("stored %v body %q headers %v", d.Stored, d.Body, d.Header)
	}

	lookupGroup := all[0].Group()
	tests := []struct {
		name string
		f    dlq.Filter
		want []uint64
	}{
		{"flow", dlq.Filter{Flow: "marta.signup"}, []uint64{seqs[2], seqs[4]}},
		{"tenant", dlq.Filter{Tenant: "beta"}, []uint64{seqs[2], seqs[3]}},
		{"registration", dlq.Filter{Registration: "r4"}, []uint64{seqs[3]}},
		{"handler", dlq.Filter{Handler: "resamania.lookup"}, []uint64{seqs[0], seqs[3]}},
		{"code", dlq.Filter{Code: "panic"}, []uint64{seqs[4]}},
		{"group", dlq.Filter{Group: lookupGroup}, []uint64{seqs[0], seqs[3]}},
		{"since", dlq.Filter{Since: time.Now().Add(-time.Hour)}, []uint64{seqs[2], seqs[3], seqs[4]}},
		{"flow and tenant", dlq.Filter{Flow: "marta.signup", Tenant: "acme"}, []uint64{seqs[4]}},
		{"seqs with deleted ones", dlq.Filter{Seqs: []uint64{seqs[4], seqs[1], seqs[0], 999}}, []uint64{seqs[0], seqs[4]}},
		{"seqs and flow", dlq.Filter{Seqs: []uint64{seqs[0], seqs[2]}, Flow: "marta.signup"}, []uint64{seqs[2]}},
		{"nothing", dlq.Filter{Flow: "nope"}, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.c.List(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seqsOf(got)) != fmt.Sprint(tt.want) {
				t.Errorf("seqs %v, want %v", seqsOf(got), tt.want)
			}
			for _, d := range got {
				if !tt.f.Match(d) {
					t.Errorf("Match(%d) is false", d.Seq)
				}
			}
		})
	}
}

func TestListEmptyAndMissingStream(t *testing.T) {
	e := newEnv(t)
	got, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil || len(got) != 0 {
		t.Fatalf("empty stream: %v, %v", got, err)
	}
	// Everything deleted: the stream is empty but its sequences advanced.
	seqs := e.publish(t, letter{reg: "a"}, letter{reg: "b"})
	if _, err := e.c.Purge(t.Context(), []dlq.DeadLetter{{Seq: seqs[0]}, {Seq: seqs[1]}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.c.List(t.Context(), dlq.Filter{}); err != nil || len(got) != 0 {
		t.Fatalf("emptied stream: %v, %v", got, err)
	}
	_, err = dlq.New(e.js, "NOPE").List(t.Context(), dlq.Filter{})
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
}

// TestListLarge reads 10,000 dead letters with gaps, including a deleted
// last message.
func TestListLarge(t *testing.T) {
	e := newEnv(t)
	const n = 10000
	var futures []jetstream.PubAckFuture
	for i := range n {
		f, err := e.js.PublishMsgAsync(letter{reg: "r" + strconv.Itoa(i), flow: "f" + strconv.Itoa(i%3), handler: "h", code: "internal"}.msg(i))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publish did not complete")
	}
	for _, f := range futures {
		select {
		case err := <-f.Err():
			t.Fatal(err)
		case <-f.Ok():
		}
	}
	s := e.stream(t, e.topo.DeadLetters)
	deleted := 0
	for seq := uint64(1); seq <= n; seq++ {
		if seq%97 == 0 || seq == n {
			if err := s.DeleteMsg(t.Context(), seq); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	start := time.Now()
	all, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listed %d dead letters in %v", len(all), time.Since(start))
	if len(all) != n-deleted {
		t.Fatalf("listed %d, want %d", len(all), n-deleted)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq || all[i].Seq%97 == 0 {
			t.Fatalf("seq %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	f1, err := e.c.List(t.Context(), dlq.Filter{Flow: "f1"})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range all {
		if d.Flow == "f1" {
			want++
		}
	}
	if len(f1) != want || want == 0 {
		t.Errorf("flow f1: %d, want %d", len(f1), want)
	}
}

func TestGroups(t *testing.T) {
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("é", 250)
	dl := func(seq uint64, flow, handler, code, reason string, at time.Time) dlq.DeadLetter {
		return dlq.DeadLetter{Seq: seq, Flow: flow, Handler: handler, Code: code, Reason: reason, DeadLetteredAt: at}
	}
	dls := []dlq.DeadLetter{
		dl(1, "resamania.register", "resamania.lookup", "vendor_unavailable", "503 first", base.Add(time.Minute)),
		dl(2, "marta.signup", "marta.signup", "internal", "boom", base),
		dl(3, "resamania.register", "resamania.lookup", "vendor_unavailable", "503 latest", base.Add(3*time.Minute)),
		dl(4, "resamania.register", "resamania.lookup", "vendor_unavailable", "503 middle", base.Add(2*time.Minute)),
		dl(5, "marta.signup", "marta.signup", "panic", long, base.Add(time.Hour)),
		// No Dead-Lettered-At: the stored time counts.
		{Seq: 6, Flow: "marta.signup", Handler: "marta.signup", Code: "internal", Reason: "boom 2", Stored: base.Add(10 * time.Minute)},
	}
	groups := dlq.Groups(dls)
	if len(groups) != 3 {
		t.Fatalf("%d groups: %+v", len(groups), groups)
	}
	g := groups[0]
	if g.ID != dls[0].Group() || g.Flow != "resamania.register" || g.Handler != "resamania.lookup" || g.Code != "vendor_unavailable" ||
		g.Count != 3 || !g.First.Equal(base.Add(time.Minute)) || !g.Last.Equal(base.Add(3*time.Minute)) || g.Reason != "503 latest" {
		t.Errorf("largest group %+v", g)
	}
	g = groups[1]
	if g.Count != 2 || g.Code != "internal" || !g.First.Equal(base) || !g.Last.Equal(base.Add(10*time.Minute)) || g.Reason != "boom 2" {
		t.Errorf("second group %+v", g)
	}
	g = groups[2]
	if g.Count != 1 || g.Reason != strings.Repeat("é", 200) {
		t.Errorf("third group: count %d, reason of %d characters", g.Count, len([]rune(g.Reason)))
	}
	// Equal counts sort by ID.
	two := dlq.Groups([]dlq.DeadLetter{dls[1], dls[4]})
	if len(two) != 2 || two[0].ID > two[1].ID {
		t.Errorf("ties not sorted by ID: %+v", two)
	}
	// The group id is stable and well-formed.
	id := dls[0].Group()
	if len(id) != 12 || !strings.HasPrefix(id, "g-") || id == dls[1].Group() || id != dls[2].Group() {
		t.Errorf("group ids %q %q %q", id, dls[1].Group(), dls[2].Group())
	}
	if dlq.Groups(nil) == nil || len(dlq.Groups(nil)) != 0 {
		t.Error("Groups(nil) should be empty, not nil")
	}
}

func TestGet(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t, letter{reg: "r1", reason: "bad"}, letter{reg: "r2"})
	d, err := e.c.Get(t.Context(), seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.Seq != seqs[0] || d.RegistrationID != "r1" || d.Reason != "bad" || d.Header.Get(handlers.HeaderOriginalMsgID) != "orig-0-r1" {
		t.Errorf("got %+v", d)
	}
	if err := e.stream(t, e.topo.DeadLetters).DeleteMsg(t.Context(), seqs[0]); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{seqs[0], 0, 1000} {
		if _, err := e.c.Get(t.Context(), seq); !errors.Is(err, dlq.ErrNotFound) {
			t.Errorf("Get(%d): %v, want ErrNotFound", seq, err)
		}
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t,
		letter{flow: "resamania.register", handler: "intake", code: "internal", reg: "r1", tenant: "acme", reason: "db down",
			header: map[string]string{"X-Trace": "t-1"}},
		letter{flow: "resamania.register", handler: "resamania.lookup", code: "vendor_unavailable", reg: "r2", tenant: "acme",
			subject: lookupSubject, body: `{"registrationId":"r2","flow":"resamania.register","step":"resamania.lookup","seq":1}`},
	)
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil || len(dls) != 2 {
		t.Fatal(len(dls), err)
	}
	var progress []string
	res, err := e.c.Replay(t.Context(), dls, dlq.ReplayOptions{Rate: 1000, By: "ops@host",
		Progress: func(done, total int) { progress = append(progress, fmt.Sprintf("%d/%d", done, total)) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.AlreadyReplayed != 0 || res.Failed != 0 || len(res.Items) != 2 {
		t.Fatalf("result %+v", res)
	}
	if strings.Join(progress, " ") != "1/2 2/2" {
		t.Errorf("progress %v", progress)
	}
	for i, it := range res.Items {
		if it.Seq != seqs[i] || it.Outcome != "replayed" || it.MsgID != "replay:REGISTRATION_DLQ:"+strconv.FormatUint(seqs[i], 10) || it.At.IsZero() {
			t.Errorf("item %d: %+v", i, it)
		}
	}
	if res.Items[0].Subject != registerSubject || res.Items[1].Subject != lookupSubject {
		t.Errorf("subjects %s, %s", res.Items[0].Subject, res.Items[1].Subject)
	}

	m, err := e.stream(t, e.topo.Commands).GetLastMsgForSubject(t.Context(), registerSubject)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(dls[0].Body) {
		t.Errorf("body %q", m.Data)
	}
	h := m.Header
	want := map[string]string{
		nats.MsgIdHdr:                "replay:REGISTRATION_DLQ:" + strconv.FormatUint(seqs[0], 10),
		handlers.HeaderOriginalMsgID: "orig-0-r1",
		handlers.HeaderReplayOf:      "REGISTRATION_DLQ:" + strconv.FormatUint(seqs[0], 10),
		dlq.HeaderReplayedBy:         "ops@host",
		"X-Trace":                    "t-1",
		// Kept: step messages carry them as their own headers.
		handlers.HeaderFlow:           "resamania.register",
		handlers.HeaderRegistrationID: "r1",
		"Content-Type":                "application/json",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, h.Get(dlq.HeaderReplayedAt)); err != nil || time.Since(at) > time.Minute {
		t.Errorf("%s = %q", dlq.HeaderReplayedAt, h.Get(dlq.HeaderReplayedAt))
	}
	for _, k := range []string{handlers.HeaderOriginalSubject, handlers.HeaderReason, handlers.HeaderHandler, handlers.HeaderErrorCode,
		handlers.HeaderAttempts, handlers.HeaderDeliveries, handlers.HeaderFirstFailure, handlers.HeaderLastFailure,
		handlers.HeaderDeadLetteredAt, handlers.HeaderTenant, handlers.HeaderEditedFrom} {
		if v, ok := h[k]; ok {
			t.Errorf("dead-letter header %s kept: %q", k, v)
		}
	}
	step, err := e.stream(t, e.topo.Steps).GetLastMsgForSubject(t.Context(), lookupSubject)
	if err != nil {
		t.Fatal(err)
	}
	if string(step.Data) != string(dls[1].Body) || step.Header.Get(nats.MsgIdHdr) != "replay:REGISTRATION_DLQ:"+strconv.FormatUint(seqs[1], 10) {
		t.Errorf("step message %q %v", step.Data, step.Header)
	}

	// The dead letters are gone.
	if n := e.count(t, e.topo.DeadLetters); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	for _, seq := range seqs {
		if _, err := e.c.Get(t.Context(), seq); !errors.Is(err, dlq.ErrNotFound) {
			t.Errorf("Get(%d) after replay: %v", seq, err)
		}
	}

	// Replaying the same (stale) selection again publishes nothing.
	res, err = e.c.Replay(t.Context(), dls, dlq.ReplayOptions{Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 0 || res.AlreadyReplayed != 2 || res.Failed != 0 {
		t.Errorf("second replay %+v", res)
	}
	if n := e.count(t, e.topo.Commands); n != 1 {
		t.Errorf("commands stream holds %d messages, want 1", n)
	}
}

func TestReplayDuplicateStillDeletes(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t, letter{reg: "r1"})
	d, err := e.c.Get(t.Context(), seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Someone published the replay (same id) but did not delete the dead
	// letter.
	m := nats.NewMsg(registerSubject)
	m.Data = d.Body
	m.Header.Set(nats.MsgIdHdr, dlq.ReplayMsgID(e.topo.DeadLetters, d.Seq))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	res, err := e.c.Replay(t.Context(), []dlq.DeadLetter{d}, dlq.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 0 || res.AlreadyReplayed != 1 || res.Items[0].Outcome != "already_replayed" {
		t.Errorf("result %+v", res)
	}
	if n := e.count(t, e.topo.DeadLetters); n != 0 {
		t.Errorf("the dead letter was not deleted")
	}
	if n := e.count(t, e.topo.Commands); n != 1 {
		t.Errorf("commands stream holds %d messages, want 1", n)
	}
}

func TestReplayConcurrent(t *testing.T) {
	e := newEnv(t)
	ls := make([]letter, 50)
	for i := range ls {
		ls[i] = letter{reg: "r" + strconv.Itoa(i), flow: "resamania.register", code: "internal"}
	}
	e.publish(t, ls...)
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil || len(dls) != 50 {
		t.Fatal(len(dls), err)
	}
	var wg sync.WaitGroup
	results := make([]dlq.ReplayResult, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.c.Replay(t.Context(), dls, dlq.ReplayOptions{Rate: 200, By: "op" + strconv.Itoa(i)})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replay %d: %v", i, err)
		}
	}
	replayed := results[0].Replayed + results[1].Replayed
	already := results[0].AlreadyReplayed + results[1].AlreadyReplayed
	failed := results[0].Failed + results[1].Failed
	t.Logf("replayed %d+%d, already %d+%d", results[0].Replayed, results[1].Replayed, results[0].AlreadyReplayed, results[1].AlreadyReplayed)
	if replayed != 50 || already != 50 || failed != 0 {
		t.Errorf("replayed %d, already replayed %d, failed %d; want 50, 50, 0", replayed, already, failed)
	}
	if n := e.count(t, e.topo.Commands); n != 50 {
		t.Errorf("commands stream holds %d messages, want 50", n)
	}
	if n := e.count(t, e.topo.DeadLetters); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

func TestReplayRate(t *testing.T) {
	e := newEnv(t)
	const n, rate = 20, 20.0
	ls := make([]letter, n)
	for i := range ls {
		ls[i] = letter{reg: "r" + strconv.Itoa(i)}
	}
	e.publish(t, ls...)
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.c.Replay(t.Context(), dls, dlq.ReplayOptions{Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != n {
		t.Fatalf("result %+v", res)
	}
	span := res.Items[n-1].At.Sub(res.Items[0].At)
	if min := time.Duration(float64(n-1) / rate * 0.9 * float64(time.Second)); span < min {
		t.Errorf("%d messages at %v/s published within %v, want at least %v", n, rate, span, min)
	}
}

func TestReplayDryRun(t *testing.T) {
	e := newEnv(t)
	e.publish(t, letter{reg: "r1"}, letter{reg: "r2"}, letter{reg: "r3", subject: "-"})
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dls[2].OriginalSubject = "" // a dead letter without its original subject
	res, err := e.c.Replay(t.Context(), dls, dlq.ReplayOptions{DryRun: true, Rate: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 0 || res.AlreadyReplayed != 0 || res.Failed != 1 || len(res.Items) != 3 {
		t.Errorf("result %+v", res)
	}
	for _, it := range res.Items[:2] {
		if it.Outcome != "would_replay" || it.MsgID != dlq.ReplayMsgID("REGISTRATION_DLQ", it.Seq) {
			t.Errorf("item %+v", it)
		}
	}
	if n := e.count(t, e.topo.Commands); n != 0 {
		t.Errorf("dry run published %d messages", n)
	}
	if n := e.count(t, e.topo.DeadLetters); n != 3 {
		t.Errorf("dry run left %d of 3 dead letters", n)
	}
}

func TestReplayRefusesMissingSubject(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t, letter{reg: "r1"}, letter{reg: "r2", subject: "registration.dlq.intake"})
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dls[0].OriginalSubject = ""
	res, err := e.c.Replay(t.Context(), dls, dlq.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 2 || !strings.HasPrefix(res.Items[0].Outcome, "failed: ") || !res.Items[1].Failed() {
		t.Errorf("result %+v", res)
	}
	if n := e.count(t, e.topo.DeadLetters); n != uint64(len(seqs)) {
		t.Errorf("%d dead letters left, want %d", n, len(seqs))
	}
}

func TestReplayCancelled(t *testing.T) {
	e := newEnv(t)
	e.publish(t, letter{reg: "r1"}, letter{reg: "r2"}, letter{reg: "r3"})
	dls, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	res, err := e.c.Replay(ctx, dls, dlq.ReplayOptions{Rate: 0.01, Progress: func(done, total int) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if res.Replayed != 1 || len(res.Items) != 1 {
		t.Errorf("result %+v", res)
	}
	if n := e.count(t, e.topo.DeadLetters); n != 2 {
		t.Errorf("%d dead letters left, want 2", n)
	}
}

func TestEdit(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t, letter{reg: "r1", flow: "resamania.register", reason: "invalid", header: map[string]string{"X-Trace": "t-1"}})
	d, err := e.c.Get(t.Context(), seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"registrationId":"r1","tenant":"fixed"}`)
	it, err := e.c.Edit(t.Context(), d, body, dlq.ReplayOptions{By: "ops@host"})
	if err != nil {
		t.Fatal(err)
	}
	wantID := dlq.EditMsgID("REGISTRATION_DLQ", d.Seq, body)
	if !strings.HasPrefix(wantID, "edit:REGISTRATION_DLQ:"+strconv.FormatUint(d.Seq, 10)+":") || len(wantID) != len("edit:REGISTRATION_DLQ::")+len(strconv.FormatUint(d.Seq, 10))+12 {
		t.Errorf("edit id %q", wantID)
	}
	if it.Outcome != "replayed" || it.MsgID != wantID || it.Subject != registerSubject || it.Seq != d.Seq {
		t.Errorf("item %+v", it)
	}
	m, err := e.stream(t, e.topo.Commands).GetLastMsgForSubject(t.Context(), registerSubject)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(body) {
		t.Errorf("published %q", m.Data)
	}
	for k, v := range map[string]string{
		nats.MsgIdHdr:                wantID,
		handlers.HeaderEditedFrom:    "REGISTRATION_DLQ:" + strconv.FormatUint(d.Seq, 10),
		handlers.HeaderOriginalMsgID: "orig-0-r1",
		"X-Trace":                    "t-1",
		handlers.HeaderReason:        "",
		handlers.HeaderReplayOf:      "",
	} {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	// The dead letter is kept; the same correction again is a duplicate.
	if _, err := e.c.Get(t.Context(), d.Seq); err != nil {
		t.Errorf("dead letter gone after edit: %v", err)
	}
	it, err = e.c.Edit(t.Context(), d, body, dlq.ReplayOptions{})
	if err != nil || it.Outcome != "already_replayed" {
		t.Errorf("second edit: %+v, %v", it, err)
	}
	it, err = e.c.Edit(t.Context(), d, []byte(`{"registrationId":"r1","tenant":"other"}`), dlq.ReplayOptions{DryRun: true})
	if err != nil || it.Outcome != "would_replay" {
		t.Errorf("dry-run edit: %+v, %v", it, err)
	}
	if n := e.count(t, e.topo.Commands); n != 1 {
		t.Errorf("commands stream holds %d messages, want 1", n)
	}
}

func TestPurge(t *testing.T) {
	e := newEnv(t)
	seqs := e.publish(t, letter{reg: "r1"}, letter{reg: "r2"}, letter{reg: "r3"})
	dls, err := e.c.List(t.Context(), dlq.Filter{Seqs: seqs[:2]})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.c.Purge(t.Context(), dls)
	if err != nil || n != 2 {
		t.Fatalf("purged %d, %v", n, err)
	}
	left, err := e.c.List(t.Context(), dlq.Filter{})
	if err != nil || fmt.Sprint(seqsOf(left)) != fmt.Sprint(seqs[2:]) {
		t.Errorf("left %v, %v", seqsOf(left), err)
	}
	n, err = e.c.Purge(t.Context(), dls)
	if err != nil || n != 0 {
		t.Errorf("purge again: %d, %v", n, err)
	}
}

func TestSetFields(t *testing.T) {
	body := `{"registrationId":"r1","tenant":"acme","contact":{"email":"a@b","age":30},"tags":["x"],"big":12345678901234567890}`
	tests := []struct {
		name string
		sets []string
		want string
		err  string
	}{
		{name: "string fallback", sets: []string{"tenant=beta"},
			want: `{"big":12345678901234567890,"contact":{"age":30,"email":"a@b"},"registrationId":"r1","tags":["x"],"tenant":"beta"}`},
		{name: "nested", sets: []string{"contact.email=john@example.com"},
			want: `{"big":12345678901234567890,"contact":{"age":30,"email":"john@example.com"},"registrationId":"r1","tags":["x"],"tenant":"acme"}`},
		{name: "creates objects", sets: []string{"contact.address.postalCode=06000", "profile.x.y=z"},
			want: `{"big":12345678901234567890,"contact":{"address":{"postalCode":"06000"},"age":30,"email":"a@b"},"profile":{"x":{"y":"z"}},"registrationId":"r1","tags":["x"],"tenant":"acme"}`},
		{name: "JSON values", sets: []string{`contact.age=41`, `a=true`, `b=null`, `c="42"`, `d={"k":[1,2]}`, `tags=[]`, `e=1.50`},
			want: `{"a":true,"b":null,"big":12345678901234567890,"c":"42","contact":{"age":41,"email":"a@b"},"d":{"k":[1,2]},"e":1.50,"registrationId":"r1","tags":[],"tenant":"acme"}`},
		{name: "empty and odd strings", sets: []string{"a=", "b=x=y", "c=<&>", `d={"unclosed"`},
			want: `{"a":"","b":"x=y","big":12345678901234567890,"c":"<&>","contact":{"age":30,"email":"a@b"},"d":"{\"unclosed\"","registrationId":"r1","tags":["x"],"tenant":"acme"}`},
		{name: "through a null", sets: []string{"b=null", "b.c=1"},
			want: `{"b":{"c":1},"big":12345678901234567890,"contact":{"age":30,"email":"a@b"},"registrationId":"r1","tags":["x"],"tenant":"acme"}`},
		{name: "under a string", sets: []string{"tenant.name=x"}, err: "set tenant.name: tenant is a string, not an object"},
		{name: "under a nested number", sets: []string{"contact.age.years=3"}, err: "set contact.age.years: contact.age is a number, not an object"},
		{name: "under an array", sets: []string{"tags.0=y"}, err: "tags is an array"},
		{name: "no equals", sets: []string{"tenant"}, err: `set "tenant": want field=value`},
		{name: "empty path", sets: []string{"=x"}, err: `bad field path ""`},
		{name: "empty segment", sets: []string{"contact..email=x"}, err: `bad field path "contact..email"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dlq.SetFields([]byte(body), tt.sets)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"a":1} {}`, `{`, ``} {
		if _, err := dlq.SetFields([]byte(bad), []string{"a=1"}); err == nil {
			t.Errorf("body %q accepted", bad)
		}
	}
}
