package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/postgres"
	"github.com/registrar-dev/registrar/store/postgres/pgtest"
	"github.com/registrar-dev/registrar/store/storetest"
)

const dsnEnv = pgtest.DSNEnv

func testDSN(tb testing.TB) string { tb.Helper(); return pgtest.DSN(tb) }

func withParam(tb testing.TB, dsn, key, value string) string {
	tb.Helper()
	return pgtest.WithParam(tb, dsn, key, value)
}

func freshSchema(tb testing.TB, dsn string) string { tb.Helper(); return pgtest.FreshSchema(tb, dsn) }

// openFresh opens a store on a fresh schema.
func openFresh(tb testing.TB) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), freshSchema(tb, testDSN(tb)))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

// TestOpenTwice opens several stores on one schema at once: the schema is
// created once, the others find it, and a newer schema is refused.
func TestOpenTwice(t *testing.T) {
	dsn := freshSchema(t, testDSN(t))
	const n = 5
	errs := make(chan error, n)
	stores := make(chan *postgres.Store, n)
	for range n {
		go func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				stores <- s
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	close(stores)
	for s := range stores {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var version int
	if err := conn.QueryRow(t.Context(), "SELECT version FROM schema_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 3 {
		t.Errorf("schema version = %d, want 3", version)
	}
	if _, err := conn.Exec(t.Context(), "UPDATE schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(t.Context(), dsn); err == nil {
		s.Close()
		t.Error("Open of a schema version 99 database succeeded")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

// TestOpenErrorsHidePassword checks that no error quotes the DSN's
// password. It needs no database.
func TestOpenErrorsHidePassword(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
	}{
		{"bad port", "postgres://u:hunter2@127.0.0.1:notaport/db"},
		{"bad pool_max_conns", "postgres://u:hunter2@127.0.0.1:5432/db?pool_max_conns=many"},
		{"bad url escape", "postgres://u:hunter2%zz@127.0.0.1/db"},
		{"keyword form", "host=127.0.0.1 password=hunter2 pool_max_conns=x"},
		{"nobody listens", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestDeadlockIsConflict has two transactions lock two flows in opposite
// orders: PostgreSQL ends one of them, whose Update must then match
// store.ErrConflict (so that callers retry it), while the other commits.
func TestDeadlockIsConflict(t *testing.T) {
	s := openFresh(t)
	if err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{"f1", "f2"} {
			if err := tx.CreateFlow(ctx, store.Flow{RegistrationID: id, Status: store.StatusRunning}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bump := func(ctx context.Context, tx store.Tx, id string) error {
		f, err := tx.Flow(ctx, id)
		if err != nil {
			return err
		}
		f.Seq++
		return tx.UpdateFlow(ctx, f)
	}
	var (
		locked sync.WaitGroup
		done   sync.WaitGroup
		errs   [2]error
	)
	locked.Add(2)
	for i, order := range [][2]string{{"f1", "f2"}, {"f2", "f1"}} {
		done.Go(func() {
			errs[i] = s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
				err := bump(ctx, tx, order[0])
				locked.Done()
				if err != nil {
					return err
				}
				locked.Wait() // both hold their first row lock
				return bump(ctx, tx, order[1])
			})
		})
	}
	done.Wait()
	conflicts := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, store.ErrConflict):
			conflicts++
		case err != nil:
			t.Errorf("Update %d: %v", i, err)
		}
	}
	if conflicts != 1 {
		t.Errorf("Update errors = %v, want one ErrConflict and one success", errs)
	}
}

func BenchmarkUpdate(b *testing.B) {
	storetest.BenchmarkUpdate(b, openFresh(b))
}

func BenchmarkUpdateParallel(b *testing.B) {
	storetest.BenchmarkUpdateParallel(b, openFresh(b))
}

func BenchmarkMixedParallel(b *testing.B) {
	storetest.BenchmarkMixedParallel(b, openFresh(b))
}
