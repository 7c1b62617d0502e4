// Package stores opens the store.Store that a DSN names. It is the one
// place that knows every implementation; it lives apart from package
// store because the implementations import store for its types, so store
// cannot import them.
//
// DSNs:
//
//	sqlite:///var/lib/registrar/registrar.db  SQLite file /var/lib/registrar/registrar.db
//	sqlite://registrar.db                      SQLite file registrar.db, relative to the current directory
//	postgres://user:pass@host:5432/db?...      PostgreSQL (postgresql:// too), as pgx parses it
//
// What follows sqlite:// is the file path, verbatim: it takes no
// parameters. A postgres DSN goes to pgx whole, so it may set pool_* and
// runtime parameters such as search_path.
package stores

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/store/postgres"
	"github.com/registrar-dev/registrar/store/sqlite"
)

var (
	// ErrEmptyDSN: Open was given no DSN. The caller chooses the default.
	ErrEmptyDSN = errors.New("stores: empty DSN")
	// ErrUnsupportedDSN: the DSN's scheme names no store implementation,
	// or it has none.
	ErrUnsupportedDSN = errors.New("stores: unsupported DSN")
)

// Open opens the store dsn names (see the package doc) and creates its
// schema if needed. Errors name the DSN's scheme, never the DSN itself,
// which may hold a password.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, ErrEmptyDSN
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, " \t=/@:") {
		return nil, fmt.Errorf("%w: no scheme (want sqlite:// or postgres://)", ErrUnsupportedDSN)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			return nil, fmt.Errorf("%w: sqlite:// without a path", ErrUnsupportedDSN)
		}
		s, err := sqlite.Open(ctx, rest)
		if err != nil {
			return nil, err // not s: a nil *sqlite.Store is a non-nil store.Store
		}
		return s, nil
	case "postgres", "postgresql":
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		return nil, fmt.Errorf("%w: scheme %q (want sqlite:// or postgres://)", ErrUnsupportedDSN, scheme)
	}
}
