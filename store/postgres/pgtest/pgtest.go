// Package pgtest gives tests a real PostgreSQL database: the DSN from
// REGISTRAR_TEST_POSTGRES_DSN (the test is skipped without it) and a fresh
// schema per test, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSNEnv names the environment variable that holds the DSN of the
// PostgreSQL database tests use.
const DSNEnv = "REGISTRAR_TEST_POSTGRES_DSN"

// DSN returns the DSN of the test database, or skips the test.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		tb.Skip(DSNEnv + " not set: PostgreSQL store suite skipped")
	}
	return dsn
}

// WithParam returns dsn with the parameter key=value added, in the URL or
// key=value form.
func WithParam(tb testing.TB, dsn, key, value string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parse %s: %v", DSNEnv, err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// FreshSchema creates an empty schema, dropped when the test ends, and
// returns dsn with search_path set to it.
func FreshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	ctx := tb.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	schema := "registrar_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		// tb.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithParam(tb, dsn, "search_path", schema)
}
