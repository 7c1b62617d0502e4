package stores_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/postgres"
	"github.com/registrar-dev/registrar/store/sqlite"
	"github.com/registrar-dev/registrar/store/stores"
)

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		wantIs  error
		wantSay string
	}{
		{"empty", "", stores.ErrEmptyDSN, "empty"},
		{"blank", "  ", stores.ErrEmptyDSN, "empty"},
		{"unknown scheme", "mysql://root:hunter2@db/registrar", stores.ErrUnsupportedDSN, `"mysql"`},
		{"no scheme", "/var/lib/registrar.db", stores.ErrUnsupportedDSN, "no scheme"},
		{"keyword form", "host=db password=hunter2 dbname=x", stores.ErrUnsupportedDSN, "no scheme"},
		{"password before ://", "u:hunter2@h://x", stores.ErrUnsupportedDSN, "no scheme"},
		{"sqlite without path", "sqlite://", stores.ErrUnsupportedDSN, "without a path"},
		{"sqlite: without slashes", "sqlite:x.db", stores.ErrUnsupportedDSN, "no scheme"},
		{"postgres, bad port", "postgres://u:hunter2@127.0.0.1:bad/db", nil, "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.Open(t.Context(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.dsn)
			}
			if s != nil {
				t.Errorf("Open returned a non-nil store %#v with its error", s)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSay) {
				t.Errorf("error = %v, want it to say %s", err, tt.wantSay)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	t.Run("sqlite open error gives a nil store", func(t *testing.T) {
		s, err := stores.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "missing", "x.db"))
		if err == nil || s != nil {
			t.Errorf("Open = %#v, %v, want nil and an error", s, err)
		}
	})
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs := filepath.Join(t.TempDir(), "abs.db")
	tests := []struct {
		name string
		dsn  string
		file string
	}{
		{"absolute", "sqlite://" + abs, abs},
		{"relative", "sqlite://relative.db", filepath.Join(dir, "relative.db")},
		{"upper-case scheme", "SQLite://upper.db", filepath.Join(dir, "upper.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, tt.dsn)
			if _, ok := s.(*sqlite.Store); !ok {
				t.Errorf("Open(%q) = %T, want *sqlite.Store", tt.dsn, s)
			}
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestOpenPostgres(t *testing.T) {
	dsn := os.Getenv("REGISTRAR_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("REGISTRAR_TEST_POSTGRES_DSN not set: PostgreSQL store suite skipped")
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		t.Skip("REGISTRAR_TEST_POSTGRES_DSN is not a URL")
	}
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		t.Run(scheme, func(t *testing.T) {
			_, rest, _ := strings.Cut(freshSchema(t, dsn), "://")
			s := open(t, scheme+rest)
			if _, ok := s.(*postgres.Store); !ok {
				t.Errorf("Open = %T, want *postgres.Store", s)
			}
		})
	}
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns the URL dsn with search_path set to it.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(t.Context())
	schema := "registrar_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens dsn and closes the store when the test ends.
func open(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := stores.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	return s
}
