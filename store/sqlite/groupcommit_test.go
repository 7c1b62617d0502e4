package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/registrar-dev/registrar/store"
)

// TestGroupCommitIsolatesEachUpdate runs many updates at once, so that they
// share transactions: the ones that fail, spoil their transaction or panic
// leave nothing behind, the others are all committed, and each caller gets
// its own outcome.
func TestGroupCommitIsolatesEachUpdate(t *testing.T) {
	s := openTemp(t)
	errBoom := errors.New("boom")
	const n = 300
	var wg sync.WaitGroup
	results := make([]error, n)
	panics := make([]any, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			<-start
			results[i] = s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
				f := store.Flow{RegistrationID: fmt.Sprintf("g-%03d", i), Flow: "resamania.register", Tenant: "t",
					Status: store.StatusRunning, Step: "s", Seq: 1, Data: []byte(`{}`)}
				if err := tx.CreateFlow(ctx, f); err != nil {
					return err
				}
				switch i % 4 {
				case 1:
					return errBoom // rolled back
				case 2:
					// Spoils the transaction: a second flow with the same id
					// is an answer, an empty id is not.
					_ = tx.CreateFlow(ctx, store.Flow{})
					return nil
				case 3:
					if i%8 == 3 {
						panic("a bug in fn")
					}
				}
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		id := fmt.Sprintf("g-%03d", i)
		_, err := s.Flow(t.Context(), id)
		wantKept := i%4 == 0 || (i%4 == 3 && i%8 != 3)
		switch {
		case i%8 == 3:
			if panics[i] != "a bug in fn" {
				t.Errorf("%s: panic %v, want fn's panic in its caller", id, panics[i])
			}
		case i%4 == 1:
			if !errors.Is(results[i], errBoom) {
				t.Errorf("%s: Update = %v, want fn's error", id, results[i])
			}
		case i%4 == 2:
			if results[i] == nil {
				t.Errorf("%s: a spoiled transaction was reported committed", id)
			}
		default:
			if results[i] != nil || panics[i] != nil {
				t.Errorf("%s: Update = %v, panic %v", id, results[i], panics[i])
			}
		}
		if wantKept && err != nil {
			t.Errorf("%s: committed but not stored: %v", id, err)
		}
		if !wantKept && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: failed but stored (%v)", id, err)
		}
	}
}

// TestUpdateAfterCloseFails: a closed store refuses updates instead of
// hanging or panicking.
func TestUpdateAfterCloseFails(t *testing.T) {
	s := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.Update(t.Context(), func(context.Context, store.Tx) error { return nil })
	if err == nil {
		t.Fatal("Update on a closed store succeeded")
	}
}
