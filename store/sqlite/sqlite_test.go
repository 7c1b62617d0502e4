package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/sqlite"
	"github.com/registrar-dev/registrar/store/storetest"
)

// openTemp opens a store on a new database file in a temporary directory.
func openTemp(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "registrar.db"))
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
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"empty path", "", "empty path"},
		{"missing directory", filepath.Join(dir, "missing", "x.db"), "unable to open"},
		{"odd characters", filepath.Join(dir, "a b?c#d%20e&f=g.db"), ""},
		{"not a database", writeFile(t, filepath.Join(dir, "junk.db"), strings.Repeat("junk", 1024)), "not a database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tt.path)
			if tt.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tt.path)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open(%q) error = %v, want it to say %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.path, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := os.Stat(tt.path); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReopen checks that data and the schema version survive Close and
// Open, and that a relative path is resolved once, at Open.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := sqlite.Open(t.Context(), "relative.db")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Chdir(t.TempDir()) // later connections must still find the file
	if err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.CreateFlow(ctx, store.Flow{RegistrationID: "r1", Status: store.StatusRunning})
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := s.Flow(t.Context(), "r1"); err != nil {
		t.Fatalf("Flow: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	path := filepath.Join(dir, "relative.db")
	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := s.Flow(t.Context(), "r1"); err != nil {
		t.Errorf("Flow after reopen: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	var mode string
	if err := db.QueryRowContext(t.Context(), "SELECT version FROM schema_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if version != 3 || mode != "wal" {
		t.Errorf("schema version %d, journal mode %q, want 3, wal", version, mode)
	}

	// A database from a newer program is refused.
	if _, err := db.ExecContext(t.Context(), "UPDATE schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path); err == nil {
		s.Close()
		t.Error("Open of a schema version 99 database succeeded")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

// TestTwoStoresOneFile checks that two Stores on one file (as two
// processes would have) take turns writing without SQLITE_BUSY failures
// and without losing an increment.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.CreateFlow(ctx, store.Flow{RegistrationID: "c", Status: store.StatusRunning})
	}); err != nil {
		t.Fatal(err)
	}
	const perStore = 200
	errs := make(chan error, 2)
	for _, s := range []*sqlite.Store{a, b} {
		go func() {
			for range perStore {
				for {
					err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
						f, err := tx.Flow(ctx, "c")
						if err != nil {
							return err
						}
						f.Seq++
						return tx.UpdateFlow(ctx, f)
					})
					if errors.Is(err, store.ErrConflict) {
						continue // cannot happen with BEGIN IMMEDIATE, but is allowed
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	f, err := b.Flow(t.Context(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 2*perStore {
		t.Errorf("Seq = %d, want %d", f.Seq, 2*perStore)
	}
}

// crashEnv, when set, makes TestCommitsSurviveSIGKILL the child process
// that commits until it is killed, on the database file it names.
const crashEnv = "REGISTRAR_SQLITE_CRASH_CHILD_DB"

// TestCommitsSurviveSIGKILL runs a child process that commits transactions
// and reports each commit, kills it with SIGKILL, and checks that every
// reported commit is in the database.
func TestCommitsSurviveSIGKILL(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCommitsSurviveSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	committed := -1
	lines := bufio.NewScanner(out)
	for committed < 200 && lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "committed "); ok {
			if committed, err = strconv.Atoi(n); err != nil {
				t.Fatalf("child says %q", lines.Text())
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: an error by design
	if committed < 0 {
		t.Fatal("child committed nothing")
	}

	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	for i := 0; i <= committed; i++ {
		if _, err := s.Flow(t.Context(), "f-"+strconv.Itoa(i)); err != nil {
			t.Fatalf("commit %d of %d lost: %v", i, committed, err)
		}
	}
	n, _, err := s.OutboxStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n < committed+1 {
		t.Errorf("outbox holds %d records, want at least %d", n, committed+1)
	}
}

// crashChild commits transactions forever, printing each commit.
func crashChild(t *testing.T, path string) {
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		id := "f-" + strconv.Itoa(i)
		if err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if err := tx.CreateFlow(ctx, store.Flow{RegistrationID: id, Status: store.StatusRunning}); err != nil {
				return err
			}
			return tx.Enqueue(ctx, outbox.Message{ID: id, Subject: "s", Payload: []byte(id)})
		}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("committed %d\n", i)
	}
}

func BenchmarkUpdate(b *testing.B) {
	storetest.BenchmarkUpdate(b, openTemp(b))
}

func BenchmarkUpdateParallel(b *testing.B) {
	storetest.BenchmarkUpdateParallel(b, openTemp(b))
}

// BenchmarkMixedParallel compares the two connection layouts on a
// read-mostly load: the one Open uses (one writer, a pool of readers) and
// a single connection for everything.
func BenchmarkMixedParallel(b *testing.B) {
	b.Run("readers", func(b *testing.B) { storetest.BenchmarkMixedParallel(b, openTemp(b)) })
	b.Run("single", func(b *testing.B) {
		s, err := sqlite.OpenSinglePool(b.Context(), filepath.Join(b.TempDir(), "registrar.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		storetest.BenchmarkMixedParallel(b, s)
	})
}
