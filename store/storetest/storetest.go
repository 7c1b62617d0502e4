// Package storetest is the contract of store.Store as tests: every
// implementation runs Run against a fresh, empty store per subtest, so that
// they all behave the same. It also holds the benchmarks they share.
//
// An implementation's test file does:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// Run runs the contract suite. newStore must return a new, empty store
// each time and close it in t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"CreateAndRead", testCreateAndRead},
		{"FlowNotFound", testFlowNotFound},
		{"CreateExists", testCreateExists},
		{"UpdateFlow", testUpdateFlow},
		{"UpdateFlowRefused", testUpdateFlowRefused},
		{"UpdateRollsBack", testUpdateRollsBack},
		{"SpoiledTxIsNotCommitted", testSpoiledTx},
		{"TxUnusableAfterUpdate", testTxAfterUpdate},
		{"ReadsSeeOnlyCommitted", testReadsSeeOnlyCommitted},
		{"ClaimCommand", testClaimCommand},
		{"OutboxRoundTrip", testOutboxRoundTrip},
		{"OutboxOrder", testOutboxOrder},
		{"PendingOutboxLimit", testPendingOutboxLimit},
		{"DeleteOutbox", testDeleteOutbox},
		{"OutboxSeqNotReused", testOutboxSeqNotReused},
		{"OutboxStats", testOutboxStats},
		{"OutboxDuplicateID", testOutboxDuplicateID},
		{"OutboxDuplicateIsAtomic", testOutboxDuplicateAtomic},
		{"Leases", testLeases},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRace", testLeaseRace},
		{"LeaseBadTTL", testLeaseBadTTL},
		{"DueFlows", testDueFlows},
		{"Checkpoints", testCheckpoints},
		{"WaitingFlows", testWaitingFlows},
		{"ConcurrentUpdates", testConcurrentUpdates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, newStore(t))
		})
	}
}

// errBoom is what a failing fn returns.
var errBoom = errors.New("boom")

// update runs fn in s.Update and fails the test if it fails.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// create stores flows in one transaction.
func create(t *testing.T, s store.Store, flows ...store.Flow) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, f := range flows {
			if err := tx.CreateFlow(ctx, f); err != nil {
				return err
			}
		}
		return nil
	})
}

// enqueue appends msgs in one transaction.
func enqueue(t *testing.T, s store.Store, msgs ...outbox.Message) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Enqueue(ctx, msgs...) })
}

// getFlow reads a committed flow and fails the test if it cannot.
func getFlow(t *testing.T, s store.Store, id string) store.Flow {
	t.Helper()
	f, err := s.Flow(t.Context(), id)
	if err != nil {
		t.Fatalf("Flow(%q): %v", id, err)
	}
	return f
}

// pending reads the whole outbox.
func pending(t *testing.T, s store.Store) []outbox.Record {
	t.Helper()
	recs, err := s.PendingOutbox(t.Context(), 1_000_000)
	if err != nil {
		t.Fatalf("PendingOutbox: %v", err)
	}
	return recs
}

// ids lists the records' message IDs.
func ids(recs []outbox.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// sampleFlow is a flow with every field set, Deadline in a non-UTC zone
// and with nanoseconds.
func sampleFlow(id string) store.Flow {
	return store.Flow{
		RegistrationID: id,
		Flow:           "resamania.register",
		Tenant:         "tenant-1",
		Status:         store.StatusWaiting,
		Step:           "await-otp",
		Seq:            7,
		WaitingFor:     "otp",
		Deadline:       time.Date(2031, 2, 3, 4, 5, 6, 123456789, time.FixedZone("CET", 3600)),
		Data:           []byte(`{"command":{"email":"a@example.com"},"history":["start"]}`),
	}
}

// message is an outbox message with a fresh ID.
func message(key string, payload string) outbox.Message {
	return outbox.Message{
		ID:      uuid.NewString(),
		Subject: "registrar.events." + key,
		Key:     key,
		Headers: map[string]string{"Content-Type": "application/json"},
		Payload: []byte(payload),
	}
}

// checkFlow compares what the caller gave with what the store returned;
// the store sets Version, CreatedAt and UpdatedAt.
func checkFlow(t *testing.T, got, want store.Flow) {
	t.Helper()
	wantDeadline := time.Time{}
	if !want.Deadline.IsZero() {
		wantDeadline = want.Deadline.UTC().Truncate(time.Microsecond)
	}
	switch {
	case got.RegistrationID != want.RegistrationID, got.Flow != want.Flow, got.Tenant != want.Tenant,
		got.Status != want.Status, got.Step != want.Step, got.Seq != want.Seq, got.WaitingFor != want.WaitingFor:
		t.Errorf("flow = %+v\nwant %+v", got, want)
	case !bytes.Equal(got.Data, want.Data):
		t.Errorf("Data = %q, want %q", got.Data, want.Data)
	case !got.Deadline.Equal(wantDeadline) || got.Deadline.IsZero() != wantDeadline.IsZero():
		t.Errorf("Deadline = %v, want %v", got.Deadline, wantDeadline)
	case !got.Deadline.IsZero() && got.Deadline.Location() != time.UTC:
		t.Errorf("Deadline location = %v, want UTC", got.Deadline.Location())
	case got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC:
		t.Errorf("CreatedAt, UpdatedAt locations = %v, %v, want UTC", got.CreatedAt.Location(), got.UpdatedAt.Location())
	case got.CreatedAt.Sub(time.Now()).Abs() > time.Minute:
		t.Errorf("CreatedAt = %v, not about now", got.CreatedAt)
	case got.UpdatedAt.Before(got.CreatedAt):
		t.Errorf("UpdatedAt %v before CreatedAt %v", got.UpdatedAt, got.CreatedAt)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateAndRead(t *testing.T, s store.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		flow func(f store.Flow) store.Flow
	}{
		{"all fields", func(f store.Flow) store.Flow { return f }},
		{"zero deadline", func(f store.Flow) store.Flow { f.Deadline = time.Time{}; return f }},
		{"utc deadline", func(f store.Flow) store.Flow {
			f.Deadline = time.Date(2030, 1, 1, 0, 0, 0, 1000, time.UTC)
			return f
		}},
		{"deadline before 1970", func(f store.Flow) store.Flow {
			f.Deadline = time.Date(1960, 6, 1, 12, 0, 0, 5000, time.UTC)
			return f
		}},
		{"nil data", func(f store.Flow) store.Flow { f.Data = nil; return f }},
		{"binary data", func(f store.Flow) store.Flow { f.Data = all; return f }},
		{"empty strings", func(f store.Flow) store.Flow {
			return store.Flow{RegistrationID: f.RegistrationID}
		}},
		{"unicode", func(f store.Flow) store.Flow {
			f.RegistrationID += "-é中🙂"
			f.Tenant = "ténant 'quoted' \"double\""
			return f
		}},
		{"all statuses: running", func(f store.Flow) store.Flow { f.Status = store.StatusRunning; return f }},
		{"all statuses: suspended", func(f store.Flow) store.Flow { f.Status = store.StatusSuspended; return f }},
		{"all statuses: completed", func(f store.Flow) store.Flow { f.Status = store.StatusCompleted; return f }},
		{"all statuses: failed", func(f store.Flow) store.Flow { f.Status = store.StatusFailed; return f }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.flow(sampleFlow(fmt.Sprintf("reg-%d", i)))
			before := time.Now()
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				if err := tx.CreateFlow(ctx, want); err != nil {
					return err
				}
				got, err := tx.Flow(ctx, want.RegistrationID)
				if err != nil {
					return fmt.Errorf("read in the same transaction: %w", err)
				}
				checkFlow(t, got, want)
				if got.Version != 1 {
					t.Errorf("Version in transaction = %d, want 1", got.Version)
				}
				return nil
			})
			got := getFlow(t, s, want.RegistrationID)
			checkFlow(t, got, want)
			if got.Version != 1 {
				t.Errorf("Version = %d, want 1", got.Version)
			}
			if !got.CreatedAt.Equal(got.UpdatedAt) {
				t.Errorf("CreatedAt %v != UpdatedAt %v on create", got.CreatedAt, got.UpdatedAt)
			}
			if got.CreatedAt.Before(before.Add(-time.Minute)) {
				t.Errorf("CreatedAt %v, created at %v", got.CreatedAt, before)
			}
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				got, err := tx.Flow(ctx, want.RegistrationID)
				if err != nil {
					return err
				}
				checkFlow(t, got, want)
				return nil
			})
		})
	}
}

func testFlowNotFound(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("other"))
	if _, err := s.Flow(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Store.Flow(missing) error = %v, want ErrNotFound", err)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Flow(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tx.Flow(missing) error = %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testCreateExists(t *testing.T, s store.Store) {
	orig := sampleFlow("reg")
	create(t, s, orig)
	dup := orig
	dup.Step = "other"
	dup.Data = []byte("other")

	t.Run("later transaction", func(t *testing.T) {
		err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.CreateFlow(ctx, dup) })
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateFlow(existing) error = %v, want ErrExists", err)
		}
	})
	t.Run("same transaction, which stays usable", func(t *testing.T) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.CreateFlow(ctx, sampleFlow("reg2")); err != nil {
				return err
			}
			if err := tx.CreateFlow(ctx, dup); !errors.Is(err, store.ErrExists) {
				t.Errorf("CreateFlow(existing) error = %v, want ErrExists", err)
			}
			if err := tx.CreateFlow(ctx, sampleFlow("reg2")); !errors.Is(err, store.ErrExists) {
				t.Errorf("CreateFlow(created in this tx) error = %v, want ErrExists", err)
			}
			return tx.CreateFlow(ctx, sampleFlow("reg3"))
		})
		for _, id := range []string{"reg2", "reg3"} {
			getFlow(t, s, id)
		}
	})
	got := getFlow(t, s, "reg")
	checkFlow(t, got, orig)
	if got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
}

func testUpdateFlow(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("reg"))
	created := getFlow(t, s, "reg")

	changes := []struct {
		name   string
		change func(f store.Flow) store.Flow
	}{
		{"step and data", func(f store.Flow) store.Flow {
			f.Step, f.Seq, f.Data = "verify", f.Seq+1, []byte(`{"v":2}`)
			return f
		}},
		{"status and no deadline", func(f store.Flow) store.Flow {
			f.Status, f.WaitingFor, f.Deadline = store.StatusRunning, "", time.Time{}
			return f
		}},
		{"deadline again", func(f store.Flow) store.Flow {
			f.Status, f.WaitingFor = store.StatusWaiting, "otp"
			f.Deadline = time.Date(2032, 1, 1, 1, 1, 1, 999999999, time.UTC)
			return f
		}},
		{"every other field", func(f store.Flow) store.Flow {
			f.Flow, f.Tenant, f.Data = "other.flow", "tenant-2", nil
			return f
		}},
	}
	prev := created
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			want := c.change(prev)
			update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateFlow(ctx, want) })
			got := getFlow(t, s, "reg")
			checkFlow(t, got, want)
			if got.Version != prev.Version+1 {
				t.Errorf("Version = %d, want %d", got.Version, prev.Version+1)
			}
			if !got.CreatedAt.Equal(created.CreatedAt) {
				t.Errorf("CreatedAt = %v, want it kept: %v", got.CreatedAt, created.CreatedAt)
			}
			if got.UpdatedAt.Before(prev.UpdatedAt) {
				t.Errorf("UpdatedAt = %v, before the previous %v", got.UpdatedAt, prev.UpdatedAt)
			}
			prev = got
		})
	}

	t.Run("twice in one transaction", func(t *testing.T) {
		start := getFlow(t, s, "reg")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			f, err := tx.Flow(ctx, "reg")
			if err != nil {
				return err
			}
			f.Seq++
			if err := tx.UpdateFlow(ctx, f); err != nil {
				return err
			}
			if err := tx.UpdateFlow(ctx, f); !errors.Is(err, store.ErrConflict) {
				t.Errorf("UpdateFlow with the version just replaced: error = %v, want ErrConflict", err)
			}
			f, err = tx.Flow(ctx, "reg")
			if err != nil {
				return err
			}
			if f.Version != start.Version+1 {
				t.Errorf("Version read back in transaction = %d, want %d", f.Version, start.Version+1)
			}
			f.Seq++
			return tx.UpdateFlow(ctx, f)
		})
		got := getFlow(t, s, "reg")
		if got.Version != start.Version+2 || got.Seq != start.Seq+2 {
			t.Errorf("Version, Seq = %d, %d, want %d, %d", got.Version, got.Seq, start.Version+2, start.Seq+2)
		}
	})
}

func testUpdateFlowRefused(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("reg"))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		f, err := tx.Flow(ctx, "reg")
		if err != nil {
			return err
		}
		return tx.UpdateFlow(ctx, f) // now at Version 2
	})
	stored := getFlow(t, s, "reg")

	tests := []struct {
		name    string
		id      string
		version int64
		want    error
	}{
		{"stale version", "reg", 1, store.ErrConflict},
		{"zero version", "reg", 0, store.ErrConflict},
		{"future version", "reg", 3, store.ErrConflict},
		{"missing flow", "missing", 1, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sampleFlow(tt.id)
			f.Version = tt.version
			f.Step = "should not be written"
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				if err := tx.UpdateFlow(ctx, f); !errors.Is(err, tt.want) {
					t.Errorf("UpdateFlow error = %v, want %v", err, tt.want)
				}
				return nil // the answer does not spoil the transaction
			})
			got := getFlow(t, s, "reg")
			if got.Version != stored.Version || got.Step != stored.Step {
				t.Errorf("stored flow changed: Version %d Step %q, want %d %q", got.Version, got.Step, stored.Version, stored.Step)
			}
			if _, err := s.Flow(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Flow(missing) error = %v, want ErrNotFound", err)
			}
		})
	}
}

func testUpdateRollsBack(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("existing"))
	enqueue(t, s, outbox.Message{ID: "kept", Subject: "s", Key: "existing"})
	before := getFlow(t, s, "existing")

	err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateFlow(ctx, sampleFlow("new")); err != nil {
			return err
		}
		f, err := tx.Flow(ctx, "existing")
		if err != nil {
			return err
		}
		f.Step = "changed"
		if err := tx.UpdateFlow(ctx, f); err != nil {
			return err
		}
		if ok, err := tx.ClaimCommand(ctx, "existing", "register", "msg-1"); err != nil || !ok {
			return fmt.Errorf("ClaimCommand = %v, %v", ok, err)
		}
		if err := tx.Enqueue(ctx, message("existing", "a"), message("existing", "b")); err != nil {
			return err
		}
		return fmt.Errorf("step failed: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v, want fn's error", err)
	}

	if _, err := s.Flow(t.Context(), "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("created flow: Flow error = %v, want ErrNotFound", err)
	}
	after := getFlow(t, s, "existing")
	if after.Version != before.Version || after.Step != before.Step {
		t.Errorf("updated flow: Version %d Step %q, want %d %q", after.Version, after.Step, before.Version, before.Step)
	}
	if got := ids(pending(t, s)); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("outbox = %v, want [kept]", got)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.ClaimCommand(ctx, "existing", "register", "msg-2")
		if err != nil {
			return err
		}
		if !ok {
			t.Error("rolled back claim was kept: ClaimCommand = false, want true")
		}
		return nil
	})
}

func testSpoiledTx(t *testing.T, s store.Store) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateFlow(ctx, sampleFlow("a")); err != nil {
			return err
		}
		if err := tx.CreateFlow(cancelled, sampleFlow("b")); err == nil {
			t.Error("CreateFlow with a cancelled context succeeded")
		}
		return nil // swallows the error
	})
	if err == nil {
		t.Error("Update committed a transaction in which a statement failed")
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Flow(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Flow(%q) error = %v, want ErrNotFound", id, err)
		}
	}
}

func testTxAfterUpdate(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("reg"))
	for _, name := range []string{"committed", "rolled back"} {
		t.Run(name, func(t *testing.T) {
			var kept store.Tx
			_ = s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
				kept = tx
				if name == "rolled back" {
					return errBoom
				}
				return nil
			})
			ctx := t.Context()
			if _, err := kept.Flow(ctx, "reg"); err == nil {
				t.Error("Flow on a finished tx succeeded")
			}
			if err := kept.CreateFlow(ctx, sampleFlow("late")); err == nil {
				t.Error("CreateFlow on a finished tx succeeded")
			}
			if _, err := kept.ClaimCommand(ctx, "reg", "c", "m"); err == nil {
				t.Error("ClaimCommand on a finished tx succeeded")
			}
			if err := kept.Enqueue(ctx, message("reg", "x")); err == nil {
				t.Error("Enqueue on a finished tx succeeded")
			}
			if _, err := s.Flow(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Flow(late) error = %v, want ErrNotFound", err)
			}
			if n := len(pending(t, s)); n != 0 {
				t.Errorf("outbox holds %d records, want 0", n)
			}
		})
	}
}

func testReadsSeeOnlyCommitted(t *testing.T, s store.Store) {
	create(t, s, sampleFlow("reg"))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateFlow(ctx, sampleFlow("new")); err != nil {
			return err
		}
		f, err := tx.Flow(ctx, "reg")
		if err != nil {
			return err
		}
		f.Step = "uncommitted"
		if err := tx.UpdateFlow(ctx, f); err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, message("reg", "x")); err != nil {
			return err
		}
		if _, err := s.Flow(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Store.Flow sees an uncommitted create: error = %v", err)
		}
		if got, err := s.Flow(ctx, "reg"); err != nil || got.Step == "uncommitted" || got.Version != 1 {
			t.Errorf("Store.Flow = %+v, %v: sees an uncommitted update", got, err)
		}
		if recs, err := s.PendingOutbox(ctx, 10); err != nil || len(recs) != 0 {
			t.Errorf("PendingOutbox = %d records, %v: sees an uncommitted enqueue", len(recs), err)
		}
		return nil
	})
	if got := getFlow(t, s, "reg"); got.Step != "uncommitted" {
		t.Errorf("after commit Step = %q", got.Step)
	}
}

func testClaimCommand(t *testing.T, s store.Store) {
	type claim struct {
		reg, cmd, msg string
		want          bool
	}
	claimAll := func(t *testing.T, claims []claim) {
		t.Helper()
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range claims {
				got, err := tx.ClaimCommand(ctx, c.reg, c.cmd, c.msg)
				if err != nil {
					return err
				}
				if got != c.want {
					t.Errorf("ClaimCommand(%q, %q, %q) = %v, want %v", c.reg, c.cmd, c.msg, got, c.want)
				}
			}
			return nil
		})
	}
	steps := []struct {
		name   string
		claims []claim
	}{
		{"first claim, then a duplicate in the same transaction", []claim{
			{"r1", "register", "m1", true},
			{"r1", "register", "m2", false},
			{"r1", "register", "m1", false},
		}},
		{"duplicate in a later transaction", []claim{{"r1", "register", "m3", false}}},
		{"other command type and other registration", []claim{
			{"r1", "cancel", "m4", true},
			{"r2", "register", "m5", true},
			{"r2", "cancel", "m6", true},
			{"r2", "register", "m7", false},
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { claimAll(t, st.claims) })
	}
	t.Run("a rolled back claim is not kept", func(t *testing.T) {
		err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if ok, err := tx.ClaimCommand(ctx, "r3", "register", "m8"); err != nil || !ok {
				t.Errorf("ClaimCommand = %v, %v, want true", ok, err)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update error = %v, want errBoom", err)
		}
		claimAll(t, []claim{{"r3", "register", "m9", true}, {"r3", "register", "m10", false}})
	})
}

func testOutboxRoundTrip(t *testing.T, s store.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	tests := []struct {
		name string
		msg  outbox.Message
	}{
		{"json", message("k1", `{"eventId":"e1"}`)},
		{"every byte value", outbox.Message{ID: "bin", Subject: "s.bin", Key: "k", Payload: all}},
		{"invalid utf-8 and nul", outbox.Message{ID: "nul", Subject: "s", Key: "k", Payload: []byte{0, 0xff, 0xfe, 0, 'x'}}},
		{"empty payload, no headers", outbox.Message{ID: "empty", Subject: "s", Key: ""}},
		{"several headers", outbox.Message{ID: "hdr", Subject: "s", Key: "k", Payload: []byte("x"),
			Headers: map[string]string{"A": "1", "B": "", "Ünï": "çødé \"q\" \n", "Nats-Expected-Stream": "EVENTS"}}},
		{"1 MiB payload", outbox.Message{ID: "big", Subject: "s", Key: "k", Payload: big}},
	}
	start := time.Now()
	for _, tt := range tests {
		enqueue(t, s, tt.msg)
	}
	recs := pending(t, s)
	if len(recs) != len(tests) {
		t.Fatalf("PendingOutbox = %d records, want %d", len(recs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := recs[i], tt.msg
			if got.ID != want.ID || got.Subject != want.Subject || got.Key != want.Key {
				t.Errorf("record = %q %q %q, want %q %q %q", got.ID, got.Subject, got.Key, want.ID, want.Subject, want.Key)
			}
			if !bytes.Equal(got.Payload, want.Payload) {
				t.Errorf("Payload: %d bytes differ from the %d given", len(got.Payload), len(want.Payload))
			}
			if len(got.Headers) != len(want.Headers) || (len(want.Headers) > 0 && !maps.Equal(got.Headers, want.Headers)) {
				t.Errorf("Headers = %v, want %v", got.Headers, want.Headers)
			}
			if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Sub(start).Abs() > time.Minute {
				t.Errorf("CreatedAt = %v, want about %v in UTC", got.CreatedAt, start)
			}
		})
	}
}

func testOutboxOrder(t *testing.T, s store.Store) {
	var want []string
	batches := [][]int{{3}, {1}, {2}, {5}}
	for b, batch := range batches {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, n := range batch {
				var msgs []outbox.Message
				for i := range n {
					m := message(fmt.Sprintf("k%d", i%2), "x")
					m.ID = fmt.Sprintf("b%d-m%d", b, i)
					msgs = append(msgs, m)
				}
				if err := tx.Enqueue(ctx, msgs...); err != nil {
					return err
				}
				for _, m := range msgs {
					want = append(want, m.ID)
				}
			}
			// A second call in the same transaction comes after the first.
			m := message("k", "y")
			m.ID = fmt.Sprintf("b%d-last", b)
			want = append(want, m.ID)
			return tx.Enqueue(ctx, m)
		})
	}
	if err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.Enqueue(ctx) // nothing to append
	}); err != nil {
		t.Fatalf("Enqueue(): %v", err)
	}
	recs := pending(t, s)
	if got := ids(recs); !slices.Equal(got, want) {
		t.Errorf("outbox order = %v\nwant %v", got, want)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Errorf("Seq %d at %d not after %d", recs[i].Seq, i, recs[i-1].Seq)
		}
		if recs[i].CreatedAt.Before(recs[i-1].CreatedAt) {
			t.Errorf("CreatedAt %v at %d before %v", recs[i].CreatedAt, i, recs[i-1].CreatedAt)
		}
	}
}

func testPendingOutboxLimit(t *testing.T, s store.Store) {
	var want []string
	for i := range 5 {
		m := message("k", "x")
		m.ID = fmt.Sprintf("m%d", i)
		want = append(want, m.ID)
		enqueue(t, s, m)
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{-1, nil},
		{0, nil},
		{1, want[:1]},
		{3, want[:3]},
		{5, want},
		{100, want},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.limit), func(t *testing.T) {
			recs, err := s.PendingOutbox(t.Context(), tt.limit)
			if err != nil {
				t.Fatalf("PendingOutbox: %v", err)
			}
			if got := ids(recs); !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("PendingOutbox(%d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
}

func testDeleteOutbox(t *testing.T, s store.Store) {
	for i := range 6 {
		m := message("k", "x")
		m.ID = fmt.Sprintf("m%d", i)
		enqueue(t, s, m)
	}
	recs := pending(t, s)
	seq := func(i int) int64 { return recs[i].Seq }
	maxSeq := recs[len(recs)-1].Seq

	steps := []struct {
		name string
		seqs []int64
		want []string
	}{
		{"nil", nil, []string{"m0", "m1", "m2", "m3", "m4", "m5"}},
		{"empty", []int64{}, []string{"m0", "m1", "m2", "m3", "m4", "m5"}},
		{"some, not in order", []int64{seq(4), seq(1)}, []string{"m0", "m2", "m3", "m5"}},
		{"unknown and already deleted ones are ignored", []int64{seq(1), maxSeq + 100, -1, seq(3)}, []string{"m0", "m2", "m5"}},
		{"duplicates", []int64{seq(0), seq(0)}, []string{"m2", "m5"}},
		{"the rest", []int64{seq(2), seq(5)}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.DeleteOutbox(t.Context(), st.seqs); err != nil {
				t.Fatalf("DeleteOutbox: %v", err)
			}
			if got := ids(pending(t, s)); !slices.Equal(got, st.want) && (len(got) != 0 || len(st.want) != 0) {
				t.Errorf("outbox = %v, want %v", got, st.want)
			}
		})
	}
	t.Run("many", func(t *testing.T) {
		msgs := make([]outbox.Message, 2500)
		for i := range msgs {
			msgs[i] = message("k", "x")
		}
		enqueue(t, s, msgs...)
		recs := pending(t, s)
		if len(recs) != len(msgs) {
			t.Fatalf("outbox holds %d records, want %d", len(recs), len(msgs))
		}
		seqs := make([]int64, 0, len(recs))
		for _, r := range recs[:len(recs)-1] {
			seqs = append(seqs, r.Seq)
		}
		if err := s.DeleteOutbox(t.Context(), seqs); err != nil {
			t.Fatalf("DeleteOutbox: %v", err)
		}
		if got := ids(pending(t, s)); !slices.Equal(got, []string{msgs[len(msgs)-1].ID}) {
			t.Errorf("outbox = %v, want the last message only", got)
		}
	})
}

func testOutboxSeqNotReused(t *testing.T, s store.Store) {
	enqueue(t, s, message("k", "a"), message("k", "b"))
	recs := pending(t, s)
	last := recs[len(recs)-1].Seq
	if err := s.DeleteOutbox(t.Context(), []int64{recs[0].Seq, recs[1].Seq}); err != nil {
		t.Fatalf("DeleteOutbox: %v", err)
	}
	enqueue(t, s, message("k", "c"))
	recs = pending(t, s)
	if len(recs) != 1 || recs[0].Seq <= last {
		t.Errorf("after emptying the outbox, new record Seq = %v, want > %d", recs, last)
	}
}

func testOutboxStats(t *testing.T, s store.Store) {
	check := func(t *testing.T, wantN int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := s.OutboxStats(t.Context())
		if err != nil {
			t.Fatalf("OutboxStats: %v", err)
		}
		if n != wantN || !oldest.Equal(wantOldest) || oldest.IsZero() != wantOldest.IsZero() {
			t.Errorf("OutboxStats = %d, %v, want %d, %v", n, oldest, wantN, wantOldest)
		}
		if !oldest.IsZero() && oldest.Location() != time.UTC {
			t.Errorf("oldest location = %v, want UTC", oldest.Location())
		}
	}
	t.Run("empty", func(t *testing.T) { check(t, 0, time.Time{}) })
	enqueue(t, s, message("k", "a"), message("k", "b"))
	enqueue(t, s, message("k", "c"))
	recs := pending(t, s)
	t.Run("three", func(t *testing.T) { check(t, 3, recs[0].CreatedAt) })
	if err := s.DeleteOutbox(t.Context(), []int64{recs[0].Seq, recs[1].Seq}); err != nil {
		t.Fatalf("DeleteOutbox: %v", err)
	}
	t.Run("one", func(t *testing.T) { check(t, 1, recs[2].CreatedAt) })
	if err := s.DeleteOutbox(t.Context(), []int64{recs[2].Seq}); err != nil {
		t.Fatalf("DeleteOutbox: %v", err)
	}
	t.Run("emptied", func(t *testing.T) { check(t, 0, time.Time{}) })
}

func testOutboxDuplicateID(t *testing.T, s store.Store) {
	orig := outbox.Message{ID: "dup", Subject: "s", Key: "k", Payload: []byte("original")}
	enqueue(t, s, orig)
	again := orig
	again.Payload = []byte("second")
	tests := []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"later transaction", func(ctx context.Context, tx store.Tx) error { return tx.Enqueue(ctx, again) }},
		{"later transaction, after others", func(ctx context.Context, tx store.Tx) error {
			return tx.Enqueue(ctx, message("k", "x"), again, message("k", "y"))
		}},
		{"twice in one call", func(ctx context.Context, tx store.Tx) error {
			m := message("k", "x")
			return tx.Enqueue(ctx, m, m)
		}},
		{"twice in one transaction", func(ctx context.Context, tx store.Tx) error {
			m := message("k", "x")
			if err := tx.Enqueue(ctx, m); err != nil {
				return err
			}
			return tx.Enqueue(ctx, m)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Update(t.Context(), tt.fn); !errors.Is(err, store.ErrExists) {
				t.Errorf("Update error = %v, want ErrExists", err)
			}
			recs := pending(t, s)
			if len(recs) != 1 || recs[0].ID != "dup" || string(recs[0].Payload) != "original" {
				t.Errorf("outbox = %v, want the original message only", ids(recs))
			}
		})
	}
}

func testOutboxDuplicateAtomic(t *testing.T, s store.Store) {
	enqueue(t, s, outbox.Message{ID: "dup", Subject: "s", Key: "k"})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		err := tx.Enqueue(ctx, outbox.Message{ID: "new1", Subject: "s"}, outbox.Message{ID: "dup", Subject: "s"})
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("Enqueue error = %v, want ErrExists", err)
		}
		// The transaction stays usable and the failed call appended nothing.
		return tx.Enqueue(ctx, outbox.Message{ID: "new2", Subject: "s"}, outbox.Message{ID: "new1", Subject: "s"})
	})
	if got := ids(pending(t, s)); !slices.Equal(got, []string{"dup", "new2", "new1"}) {
		t.Errorf("outbox = %v, want [dup new2 new1]", got)
	}
}

func testLeases(t *testing.T, s store.Store) {
	const hour = time.Hour
	steps := []struct {
		name    string
		release bool // ReleaseLease instead of AcquireLease
		lease   string
		holder  string
		want    bool
	}{
		{"a takes a free lease", false, "relay", "a", true},
		{"a renews it", false, "relay", "a", true},
		{"b is refused", false, "relay", "b", false},
		{"b takes another lease", false, "scanner", "b", true},
		{"b releasing a's lease does nothing", true, "relay", "b", false},
		{"so b is still refused", false, "relay", "b", false},
		{"a releases it", true, "relay", "a", false},
		{"b takes it", false, "relay", "b", true},
		{"a is refused", false, "relay", "a", false},
		{"releasing a free lease does nothing", true, "nobody", "a", false},
		{"a is still refused the other", false, "scanner", "a", false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.release {
				if err := s.ReleaseLease(t.Context(), st.lease, st.holder); err != nil {
					t.Fatalf("ReleaseLease: %v", err)
				}
				return
			}
			got, err := s.AcquireLease(t.Context(), st.lease, st.holder, hour)
			if err != nil {
				t.Fatalf("AcquireLease: %v", err)
			}
			if got != st.want {
				t.Errorf("AcquireLease(%q, %q) = %v, want %v", st.lease, st.holder, got, st.want)
			}
		})
	}
}

func testLeaseExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	if ok, err := s.AcquireLease(ctx, "relay", "a", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("AcquireLease(a) = %v, %v", ok, err)
	}
	// Wait for the lease to expire: b polls until it gets it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := s.AcquireLease(ctx, "relay", "b", time.Hour)
		if err != nil {
			t.Fatalf("AcquireLease(b): %v", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took over the expired lease")
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if ok, err := s.AcquireLease(ctx, "relay", "a", time.Hour); err != nil || ok {
		t.Errorf("AcquireLease(a) after b took over = %v, %v, want false", ok, err)
	}
}

func testLeaseRace(t *testing.T, s store.Store) {
	const n = 10
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		holder := fmt.Sprintf("h%d", i)
		wg.Go(func() {
			ok, err := s.AcquireLease(t.Context(), "relay", holder, time.Hour)
			if err != nil {
				t.Errorf("AcquireLease(%s): %v", holder, err)
				return
			}
			if ok {
				mu.Lock()
				wins = append(wins, holder)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Errorf("holders that got the lease = %v, want exactly one", wins)
	}
}

func testLeaseBadTTL(t *testing.T, s store.Store) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if ok, err := s.AcquireLease(t.Context(), "relay", "a", ttl); err == nil || ok {
			t.Errorf("AcquireLease(ttl %v) = %v, %v, want an error", ttl, ok, err)
		}
	}
}

func testDueFlows(t *testing.T, s store.Store) {
	now := time.Now()
	flow := func(id string, status store.Status, deadline time.Time) store.Flow {
		f := sampleFlow(id)
		f.Status, f.Deadline = status, deadline
		return f
	}
	create(t, s,
		flow("due-2", store.StatusWaiting, now.Add(-2*time.Hour)),
		flow("due-4", store.StatusWaiting, now), // exactly now: due
		flow("due-1", store.StatusWaiting, now.Add(-72*time.Hour)),
		flow("due-3", store.StatusWaiting, now.Add(-time.Second).In(time.FixedZone("X", -7*3600))),
		flow("future", store.StatusWaiting, now.Add(time.Second)),
		flow("no-deadline", store.StatusWaiting, time.Time{}),
		flow("running", store.StatusRunning, now.Add(-time.Hour)),
		flow("suspended", store.StatusSuspended, now.Add(-time.Hour)),
		flow("completed", store.StatusCompleted, now.Add(-time.Hour)),
		flow("failed", store.StatusFailed, now.Add(-time.Hour)),
	)
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"all due", now, 100, []string{"due-1", "due-2", "due-3", "due-4"}},
		{"limit", now, 2, []string{"due-1", "due-2"}},
		{"limit one", now, 1, []string{"due-1"}},
		{"zero limit", now, 0, nil},
		{"negative limit", now, -5, nil},
		{"earlier now", now.Add(-time.Hour), 100, []string{"due-1", "due-2"}},
		{"before everything", now.Add(-100 * time.Hour), 100, nil},
		{"later now", now.Add(time.Minute), 100, []string{"due-1", "due-2", "due-3", "due-4", "future"}},
		{"now in another zone", now.In(time.FixedZone("Y", 5*3600)), 100, []string{"due-1", "due-2", "due-3", "due-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flows, err := s.DueFlows(t.Context(), tt.now, tt.limit)
			if err != nil {
				t.Fatalf("DueFlows: %v", err)
			}
			var got []string
			for _, f := range flows {
				got = append(got, f.RegistrationID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("DueFlows = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("flows are whole", func(t *testing.T) {
		flows, err := s.DueFlows(t.Context(), now, 1)
		if err != nil || len(flows) != 1 {
			t.Fatalf("DueFlows = %v, %v", flows, err)
		}
		want := flow("due-1", store.StatusWaiting, now.Add(-72*time.Hour))
		checkFlow(t, flows[0], want)
		if flows[0].Version != 1 {
			t.Errorf("Version = %d, want 1", flows[0].Version)
		}
	})
	t.Run("not due once no longer waiting", func(t *testing.T) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			f, err := tx.Flow(ctx, "due-1")
			if err != nil {
				return err
			}
			f.Status, f.Deadline = store.StatusRunning, time.Time{}
			return tx.UpdateFlow(ctx, f)
		})
		flows, err := s.DueFlows(t.Context(), now, 1)
		if err != nil || len(flows) != 1 || flows[0].RegistrationID != "due-2" {
			t.Errorf("DueFlows = %v, %v, want due-2", flows, err)
		}
	})
}

// testConcurrentUpdates has many goroutines increment one counter flow,
// each increment in its own transaction that also claims a command and
// appends an outbox message, retrying on ErrConflict. Every increment must
// land exactly once, with exactly its message.
func testConcurrentUpdates(t *testing.T, s store.Store) {
	const (
		workers     = 20
		perWorker   = 50
		maxAttempts = 1000
	)
	counter := store.Flow{RegistrationID: "counter", Status: store.StatusRunning, Data: []byte("0")}
	create(t, s, counter)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("w%02d-i%02d", w, i)
				for attempt := 1; ; attempt++ {
					err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
						f, err := tx.Flow(ctx, "counter")
						if err != nil {
							return err
						}
						n, err := strconv.Atoi(string(f.Data))
						if err != nil {
							return fmt.Errorf("counter data %q: %w", f.Data, err)
						}
						f.Data = []byte(strconv.Itoa(n + 1))
						f.Seq++
						if err := tx.UpdateFlow(ctx, f); err != nil {
							return err
						}
						ok, err := tx.ClaimCommand(ctx, "counter", id, id)
						if err != nil {
							return err
						}
						if !ok {
							return fmt.Errorf("command %s claimed twice", id)
						}
						return tx.Enqueue(ctx, outbox.Message{ID: id, Subject: "counter", Key: "counter", Payload: f.Data})
					})
					if errors.Is(err, store.ErrConflict) && attempt < maxAttempts {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Errorf("increment %s, attempt %d: %v", id, attempt, err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d increments, %d conflicts retried", workers*perWorker, conflicts)

	const total = workers * perWorker
	got := getFlow(t, s, "counter")
	if string(got.Data) != strconv.Itoa(total) || got.Seq != total || got.Version != total+1 {
		t.Errorf("counter = %s, Seq %d, Version %d, want %d, %d, %d", got.Data, got.Seq, got.Version, total, total, total+1)
	}
	n, _, err := s.OutboxStats(t.Context())
	if err != nil {
		t.Fatalf("OutboxStats: %v", err)
	}
	recs := pending(t, s)
	if n != total || len(recs) != total {
		t.Fatalf("outbox: OutboxStats %d, PendingOutbox %d records, want %d", n, len(recs), total)
	}
	// Each record carries the counter value its transaction wrote: in Seq
	// order they are 1..total, since increments are serialised.
	seen := make(map[string]bool, total)
	for i, r := range recs {
		if seen[r.ID] {
			t.Errorf("message %s appended twice", r.ID)
		}
		seen[r.ID] = true
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Errorf("Seq %d after %d", r.Seq, recs[i-1].Seq)
		}
		if string(r.Payload) != strconv.Itoa(i+1) {
			t.Errorf("record %d (%s) carries counter %s, want %d", i, r.ID, r.Payload, i+1)
			break
		}
	}
}

func testCheckpoints(t *testing.T, s store.Store) {
	ctx := t.Context()
	get := func(name string) string {
		t.Helper()
		v, err := s.Checkpoint(ctx, name)
		if err != nil {
			t.Fatalf("Checkpoint(%q): %v", name, err)
		}
		return v
	}
	set := func(name, value string) {
		t.Helper()
		if err := s.SetCheckpoint(ctx, name, value); err != nil {
			t.Fatalf("SetCheckpoint(%q): %v", name, err)
		}
	}
	if v := get("cloudsuite:acme"); v != "" {
		t.Fatalf("unset checkpoint = %q, want \"\"", v)
	}
	set("cloudsuite:acme", "2026-01-02T03:04:05.123456")
	set("cloudsuite:other", "x")
	if v := get("cloudsuite:acme"); v != "2026-01-02T03:04:05.123456" {
		t.Errorf("checkpoint = %q after set", v)
	}
	set("cloudsuite:acme", "2026-02-01T00:00:00")
	if v := get("cloudsuite:acme"); v != "2026-02-01T00:00:00" {
		t.Errorf("checkpoint = %q after replace", v)
	}
	if v := get("cloudsuite:other"); v != "x" {
		t.Errorf("other checkpoint = %q, want x", v)
	}
}

func testWaitingFlows(t *testing.T, s store.Store) {
	flow := func(id string, status store.Status, waitingFor string) store.Flow {
		f := sampleFlow(id)
		f.Status, f.WaitingFor = status, waitingFor
		if status != store.StatusWaiting {
			f.WaitingFor, f.Deadline = "", time.Time{}
		}
		return f
	}
	// Created one after the other: UpdatedAt orders them.
	for _, f := range []store.Flow{
		flow("otp-1", store.StatusWaiting, "otp"),
		flow("act-1", store.StatusWaiting, "activation"),
		flow("otp-2", store.StatusWaiting, "otp"),
		flow("run", store.StatusRunning, ""),
		flow("done", store.StatusCompleted, ""),
		flow("otp-3", store.StatusWaiting, "otp"),
	} {
		create(t, s, f)
		time.Sleep(2 * time.Millisecond)
	}
	counts, err := s.WaitingCounts(t.Context())
	if err != nil {
		t.Fatalf("WaitingCounts: %v", err)
	}
	if len(counts) != 2 || counts["otp"] != 3 || counts["activation"] != 1 {
		t.Errorf("WaitingCounts = %v, want otp 3, activation 1", counts)
	}
	tests := []struct {
		waitingFor string
		limit      int
		want       []string
	}{
		{"otp", 10, []string{"otp-1", "otp-2", "otp-3"}},
		{"otp", 2, []string{"otp-1", "otp-2"}},
		{"activation", 10, []string{"act-1"}},
		{"", 10, []string{"otp-1", "act-1", "otp-2", "otp-3"}},
		{"nothing", 10, nil},
		{"otp", 0, nil},
	}
	for _, tt := range tests {
		flows, err := s.WaitingFlows(t.Context(), tt.waitingFor, tt.limit)
		if err != nil {
			t.Fatalf("WaitingFlows: %v", err)
		}
		var got []string
		for _, f := range flows {
			got = append(got, f.RegistrationID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("WaitingFlows(%q, %d) = %v, want %v", tt.waitingFor, tt.limit, got, tt.want)
		}
	}
}
