package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// newPayload returns a typical event payload of about 500 bytes.
func newPayload() []byte { return bytes.Repeat([]byte(`{"k":"0123456789abcdefghij"},`), 17) }

// step runs one typical step transaction on the flow id: read it, update
// it, claim a command, append three ~500-byte messages.
func step(ctx context.Context, s store.Store, id string, n int, payload []byte) error {
	return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		f, err := tx.Flow(ctx, id)
		if err != nil {
			return err
		}
		f.Seq++
		f.Step = "step-" + strconv.Itoa(n)
		if err := tx.UpdateFlow(ctx, f); err != nil {
			return err
		}
		cmd := "cmd-" + strconv.Itoa(n)
		if ok, err := tx.ClaimCommand(ctx, id, cmd, uuid.NewString()); err != nil || !ok {
			return fmt.Errorf("claim %s: %v, %w", cmd, ok, err)
		}
		msgs := make([]outbox.Message, 3)
		for i := range msgs {
			msgs[i] = outbox.Message{
				ID:      uuid.NewString(),
				Subject: "registrar.events.step",
				Key:     id,
				Headers: map[string]string{"Content-Type": "application/json"},
				Payload: payload,
			}
		}
		return tx.Enqueue(ctx, msgs...)
	})
}

// BenchmarkUpdate measures one typical step transaction (read a flow,
// UpdateFlow, ClaimCommand, Enqueue three ~500-byte messages), one at a
// time.
func BenchmarkUpdate(b *testing.B, s store.Store) {
	ctx := b.Context()
	f := sampleFlow("bench")
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateFlow(ctx, f) }); err != nil {
		b.Fatal(err)
	}
	payload := newPayload()
	n := 0
	for b.Loop() {
		n++
		if err := step(ctx, s, f.RegistrationID, n, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateParallel measures the step transaction of BenchmarkUpdate
// run by GOMAXPROCS goroutines at once, each on its own flow (so they do
// not conflict).
func BenchmarkUpdateParallel(b *testing.B, s store.Store) {
	ctx := b.Context()
	var workers atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("bench-%d", workers.Add(1))
		if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.CreateFlow(ctx, sampleFlow(id))
		}); err != nil {
			b.Error(err)
			return
		}
		payload := newPayload()
		n := 0
		for pb.Next() {
			n++
			if err := step(ctx, s, id, n, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMixedParallel measures a read-mostly load from GOMAXPROCS
// goroutines: of every 5 operations, 4 read a flow with Store.Flow and one
// is the step transaction of BenchmarkUpdate.
func BenchmarkMixedParallel(b *testing.B, s store.Store) {
	ctx := b.Context()
	var workers atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("bench-%d", workers.Add(1))
		if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.CreateFlow(ctx, sampleFlow(id))
		}); err != nil {
			b.Error(err)
			return
		}
		payload := newPayload()
		n := 0
		for pb.Next() {
			n++
			var err error
			if n%5 == 0 {
				err = step(ctx, s, id, n, payload)
			} else {
				_, err = s.Flow(ctx, id)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
