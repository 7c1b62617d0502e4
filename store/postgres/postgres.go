// Package postgres implements store.Store on PostgreSQL with a pgx
// connection pool (github.com/jackc/pgx/v5/pgxpool).
//
// # Concurrency
//
// Transactions run at READ COMMITTED. Flow reads take no lock; UpdateFlow
// is a conditional UPDATE on (registration_id, version), so of two
// transactions that read the same Version the second to update waits for
// the first to end and then gets store.ErrConflict. CreateFlow,
// ClaimCommand and Enqueue use INSERT ... ON CONFLICT DO NOTHING, so their
// answers (ErrExists, a false claim) leave the transaction usable. A
// deadlock between transactions (which lock rows in different orders) ends
// one of them with an error that matches store.ErrConflict: run it again.
//
// Outbox sequences come from an identity column: they increase in the
// order rows are inserted, which is not always the order transactions
// commit, so a record with a lower Seq can become visible after one with a
// higher Seq. Readers of the outbox must not treat the highest Seq seen as
// a watermark. Messages with the same Key keep their order as long as the
// transactions that append them also update that Key's flow (the row lock
// of UpdateFlow serialises them).
//
// # Time
//
// Times the store sets (Flow.CreatedAt and UpdatedAt, outbox CreatedAt,
// lease expiry) come from the database clock, now(), which is the start of
// the transaction; so lease expiry does not depend on the clocks of the
// hosts that compete for a lease. Times are timestamptz (microseconds) and
// are returned in UTC. A zero Flow.Deadline is stored as NULL.
//
// # Schema
//
// Open creates the schema (in the first schema of the search_path, which
// the DSN may set: search_path=...) when it is missing and records its
// version in the table schema_version, under a transaction-scoped advisory
// lock so that processes starting together do not race. A database written
// by a newer version of the schema is refused.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// DefaultMaxConns is the pool size when the DSN does not set
// pool_max_conns.
const DefaultMaxConns = 16

// Store is a store.Store on a PostgreSQL database. It is safe for
// concurrent use. Close it when done.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx accepts, pool_* parameters included) and creates or checks
// the schema. Errors never quote the DSN, which may hold a password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(err)
	}
	if !setsPoolMaxConns(dsn) {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// parseError reports a DSN that does not parse without quoting it:
// pgconn's own message masks passwords only on a best-effort basis, and
// the url.Error it may wrap quotes the whole URL.
func parseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return errors.New("postgres: cannot parse DSN")
	}
	// pe.Error() is "cannot parse `DSN`: msg" or "... msg (inner)"; keep
	// msg, which is pgconn's own text, and inner without any URL.
	full := pe.Error()
	inner := pe.Unwrap()
	if inner != nil {
		full = strings.TrimSuffix(full, " ("+inner.Error()+")")
		var ue *url.Error
		if errors.As(inner, &ue) {
			inner = ue.Err
		}
	}
	var msg string
	if i := strings.LastIndex(full, "`: "); i >= 0 {
		msg = full[i+len("`: "):]
	}
	switch {
	case msg != "" && inner != nil:
		return fmt.Errorf("postgres: cannot parse DSN: %s: %v", msg, inner)
	case msg != "":
		return fmt.Errorf("postgres: cannot parse DSN: %s", msg)
	case inner != nil:
		return fmt.Errorf("postgres: cannot parse DSN: %v", inner)
	default:
		return errors.New("postgres: cannot parse DSN")
	}
}

// setsPoolMaxConns reports whether dsn sets pool_max_conns. It parses dsn
// as pgx does, which leaves the pool_* settings among the runtime
// parameters.
func setsPoolMaxConns(dsn string) bool {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return false
	}
	_, ok := cfg.RuntimeParams["pool_max_conns"]
	return ok
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Update runs fn in one READ COMMITTED transaction; see store.Store.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	t := &tx{tx: pgTx}
	finished := false
	defer func() {
		// Runs on every path out, a panic in fn included: the transaction
		// is over, and is rolled back unless it was committed.
		t.closed = true
		if !finished {
			_ = rollback(ctx, pgTx)
		}
	}()
	if err := fn(ctx, t); err != nil {
		finished = true
		if rbErr := rollback(ctx, pgTx); rbErr != nil {
			return errors.Join(err, fmt.Errorf("postgres: rollback: %w", rbErr))
		}
		return err
	}
	if t.err != nil {
		return fmt.Errorf("postgres: not committed, a statement failed: %w", t.err)
	}
	finished = true
	if err := pgTx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// rollback ends pgTx even when ctx is done (pgx would otherwise close the
// connection, which rolls back too, but costs a reconnect). A failed
// rollback closes the connection, which rolls back on the server.
func rollback(ctx context.Context, pgTx pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := pgTx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}

// Flow reads a committed flow.
func (s *Store) Flow(ctx context.Context, registrationID string) (store.Flow, error) {
	f, err := getFlow(ctx, s.pool, registrationID)
	if err != nil {
		return store.Flow{}, fmt.Errorf("postgres: flow %q: %w", registrationID, err)
	}
	return f, nil
}

// DueFlows returns waiting flows whose deadline is not after now, earliest
// first (ties by registration id).
func (s *Store) DueFlows(ctx context.Context, now time.Time, limit int) ([]store.Flow, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.queryFlows(ctx, "due flows", `SELECT `+flowColumns+` FROM flows
		WHERE status = 'waiting' AND deadline IS NOT NULL AND deadline <= $1
		ORDER BY deadline, registration_id LIMIT $2`, now, limit)
}

// WaitingFlows returns up to limit waiting flows (waiting for waitingFor,
// or for anything when it is ""), longest waiting first.
func (s *Store) WaitingFlows(ctx context.Context, waitingFor string, limit int) ([]store.Flow, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.queryFlows(ctx, "waiting flows", `SELECT `+flowColumns+` FROM flows
		WHERE status = 'waiting' AND ($1 = '' OR waiting_for = $1)
		ORDER BY updated_at, registration_id LIMIT $2`, waitingFor, limit)
}

// WaitingCounts counts the waiting flows by what they wait for.
func (s *Store) WaitingCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT waiting_for, count(*) FROM flows WHERE status = 'waiting' GROUP BY waiting_for`)
	if err != nil {
		return nil, fmt.Errorf("postgres: waiting counts: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			return nil, fmt.Errorf("postgres: waiting counts: %w", err)
		}
		counts[w] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: waiting counts: %w", err)
	}
	return counts, nil
}

// queryFlows runs a query of flowColumns.
func (s *Store) queryFlows(ctx context.Context, what, query string, args ...any) ([]store.Flow, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	defer rows.Close()
	var flows []store.Flow
	for rows.Next() {
		f, err := scanFlow(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", what, err)
		}
		flows = append(flows, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return flows, nil
}

// PendingOutbox returns up to limit outbox records, lowest Seq first.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, id, subject, key, headers, payload, created_at
		FROM outbox ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending outbox: %w", err)
	}
	defer rows.Close()
	var recs []outbox.Record
	for rows.Next() {
		var (
			r       outbox.Record
			headers string
		)
		if err := rows.Scan(&r.Seq, &r.ID, &r.Subject, &r.Key, &headers, &r.Payload, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("postgres: pending outbox: %w", err)
		}
		if r.Headers, err = outbox.DecodeHeaders(headers); err != nil {
			return nil, fmt.Errorf("postgres: pending outbox: seq %d: %w", r.Seq, err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: pending outbox: %w", err)
	}
	return recs, nil
}

// DeleteOutbox removes the records with these sequences in one statement.
func (s *Store) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("postgres: delete outbox: %w", err)
	}
	return nil
}

// OutboxStats returns how many records wait and when the oldest was
// appended.
func (s *Store) OutboxStats(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest *time.Time
	)
	if err := s.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM outbox`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: outbox stats: %w", err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, oldest.UTC(), nil
}

// AcquireLease takes or renews the named lease for holder until now+ttl,
// by the database clock.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("postgres: acquire lease %q: ttl %v is not positive", name, ttl)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
		VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= now()`,
		name, holder, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("postgres: acquire lease %q: %w", name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Checkpoint returns the value set under name, "" when none.
func (s *Store) Checkpoint(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM checkpoints WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("postgres: checkpoint %q: %w", name, err)
	}
	return v, nil
}

// SetCheckpoint sets the value of name.
func (s *Store) SetCheckpoint(ctx context.Context, name, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value); err != nil {
		return fmt.Errorf("postgres: set checkpoint %q: %w", name, err)
	}
	return nil
}

// ReleaseLease gives the lease up if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("postgres: release lease %q: %w", name, err)
	}
	return nil
}

// flowColumns lists the flows columns in the order scanFlow reads them.
const flowColumns = `registration_id, flow, tenant, status, step, seq, waiting_for, deadline, data, version, created_at, updated_at`

// querier is what getFlow needs: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getFlow reads one flow; store.ErrNotFound if there is none.
func getFlow(ctx context.Context, q querier, registrationID string) (store.Flow, error) {
	f, err := scanFlow(q.QueryRow(ctx, `SELECT `+flowColumns+` FROM flows WHERE registration_id = $1`, registrationID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Flow{}, store.ErrNotFound
	}
	return f, err
}

// scanFlow reads flowColumns from a row.
func scanFlow(row pgx.Row) (store.Flow, error) {
	var (
		f        store.Flow
		status   string
		deadline *time.Time
	)
	if err := row.Scan(&f.RegistrationID, &f.Flow, &f.Tenant, &status, &f.Step, &f.Seq, &f.WaitingFor,
		&deadline, &f.Data, &f.Version, &f.CreatedAt, &f.UpdatedAt); err != nil {
		return store.Flow{}, err
	}
	f.Status = store.Status(status)
	if deadline != nil {
		f.Deadline = deadline.UTC()
	}
	f.CreatedAt = f.CreatedAt.UTC()
	f.UpdatedAt = f.UpdatedAt.UTC()
	return f, nil
}
