// Package sqlite implements store.Store on an embedded SQLite database file
// (modernc.org/sqlite: pure Go, no cgo). It is registrar's default store.
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL: a transaction that
// Update committed survives a crash of the process (SIGKILL, panic, OOM
// kill), because it is in the WAL file, which the operating system holds.
// On power failure or an operating-system crash, the last transactions
// committed before the failure may be lost (the WAL is fsynced at
// checkpoints, not at every commit); the database stays consistent. Do not
// put the file on a network file system: WAL needs shared memory.
//
// # Concurrency
//
// SQLite allows one writer at a time. A Store keeps two pools on the file:
//   - the writer: exactly one connection, which runs every transaction
//     (Update) and every write outside one (DeleteOutbox, AcquireLease,
//     ReleaseLease). Writers queue for it in Go instead of spinning on
//     SQLITE_BUSY. Transactions begin with BEGIN IMMEDIATE, so a second
//     process on the same file waits for the write lock (busy_timeout, 10s)
//     instead of failing with SQLITE_BUSY when a read turns into a write.
//   - the readers: query-only connections for Flow, DueFlows,
//     PendingOutbox, OutboxStats and Ping. In WAL mode they read the last
//     committed state without blocking the writer or being blocked by it.
//
// Updates are group-committed: one committer goroutine runs the updates
// queued while the previous transaction committed as one transaction, each
// in a savepoint of its own (a failing or panicking fn rolls back its own
// writes only), and commits once; each Update returns after that commit.
// Under load this shares SQLite's per-commit cost (WAL frames, locking)
// among up to 128 updates; a lone update commits at once.
//
// Consequence: do not call the Store's writing methods from inside the fn
// given to Update; they wait for the writer connection that fn's
// transaction holds.
//
// Transactions are serialised, so a flow read with Tx.Flow cannot change
// before the same transaction's UpdateFlow. Optimistic concurrency still
// applies to a Flow read outside the transaction (Store.Flow, an earlier
// Update): UpdateFlow returns store.ErrConflict if it changed since.
//
// # Time
//
// Times are taken from the Go clock of the process (time.Now) and stored as
// INTEGER microseconds since the Unix epoch, UTC; they are returned in UTC,
// truncated to the microsecond. Lease expiry compares against the same
// clock. A zero Flow.Deadline is stored as NULL.
//
// # Schema
//
// Open creates the schema when it is missing and records its version in
// the table schema_version; a database written by a newer version of the
// schema is refused.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// busyTimeout is how long a connection waits for a lock another process
// holds before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store on one SQLite database file. It is safe for
// concurrent use. Close it when done.
type Store struct {
	w     *sql.DB // the one writer connection
	r     *sql.DB // query-only readers; == w when split is off
	ws    *stmts  // statements prepared on w, for transactions
	rFlow *sql.Stmt
	now   func() time.Time

	// Group commit (see Update): the committer goroutine takes the
	// requests from reqs. mu guards closing reqs against sends.
	mu      sync.RWMutex
	closed  bool
	reqs    chan *updateReq
	stopped chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database at path, which
// must name a file in an existing directory, and creates or checks its
// schema. A relative path is made absolute against the current directory
// once, here.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, true)
}

// open opens the database; with split false every call shares the one
// writer connection (the tests measure both layouts).
func open(ctx context.Context, path string, split bool) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := checkWAL(ctx, w); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	if err := migrate(ctx, w); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	s := &Store{w: w, r: w, now: time.Now}
	if s.ws, err = prepare(ctx, w); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	if split {
		r, err := sql.Open("sqlite", dsn(abs, true))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sqlite: open readers: %w", err), s.Close())
		}
		n := max(4, min(runtime.GOMAXPROCS(0), 16))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		r.SetConnMaxLifetime(0)
		r.SetConnMaxIdleTime(0)
		if err := r.PingContext(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("sqlite: open readers: %w", err), r.Close(), s.Close())
		}
		s.r = r
	}
	if s.rFlow, err = s.r.PrepareContext(ctx, sqlGetFlow); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open: prepare: %w", err), s.Close())
	}
	s.reqs = make(chan *updateReq, maxBatch)
	s.stopped = make(chan struct{})
	go s.committer()
	return s, nil
}

// dsn is the modernc.org/sqlite data source name for the file at the
// absolute path abs: a file: URI, so that any character may appear in the
// path, with the pragmas every connection needs.
func dsn(abs string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + q.Encode()
}

// checkWAL fails unless the database is in WAL mode (a file system that
// cannot give SQLite shared memory leaves it in another mode).
func checkWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open: journal mode is %q, not wal", mode)
	}
	return nil
}

// Close closes the store's connections; the last one to close checkpoints
// the WAL into the database file.
func (s *Store) Close() error {
	s.mu.Lock()
	wasOpen := !s.closed && s.reqs != nil
	s.closed = true
	if wasOpen {
		close(s.reqs)
	}
	s.mu.Unlock()
	if wasOpen {
		<-s.stopped // the updates sent before are done
	}
	var errs []error
	if s.rFlow != nil {
		errs = append(errs, s.rFlow.Close())
	}
	if s.ws != nil {
		errs = append(errs, s.ws.close())
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var version int
	if err := s.r.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Update runs fn in a BEGIN IMMEDIATE transaction on the writer
// connection, as a savepoint of its own in a transaction it may share with
// the updates queued at the same time (group commit: see committer); see
// store.Store. fn runs on the committer's goroutine: it must not call the
// Store's writing methods (which would wait for the committer), and its
// statements are not interrupted when ctx ends — once handed over, an
// update runs to its commit or rollback and Update reports which.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	req := &updateReq{ctx: ctx, fn: fn, done: make(chan updateResult, 1)}
	s.mu.RLock()
	if s.closed || s.reqs == nil {
		s.mu.RUnlock()
		return errors.New("sqlite: update: the store is closed")
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	// Once handed over, the update runs: wait for its outcome even if ctx
	// ends, so that the caller never mistakes a commit for a failure.
	res := <-req.done
	if res.panicked {
		panic(res.panicValue)
	}
	return res.err
}

// maxBatch bounds how many updates one SQLite transaction carries.
const maxBatch = 128

// updateReq is one Update waiting for the committer.
type updateReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx store.Tx) error
	done chan updateResult // buffered: the committer never waits for the caller
}

type updateResult struct {
	err        error
	panicked   bool
	panicValue any
}

// committer runs the updates in batches: each batch is one BEGIN IMMEDIATE
// transaction on the writer connection, each update in it a savepoint, so
// that one update's failure (or panic) rolls back its own writes only; the
// batch commits once, and its updates learn their outcome after the
// commit. An update waits for no timer: a batch is what queued while the
// previous one committed (group commit), so a lone update is committed at
// once and a busy writer shares each commit among many.
func (s *Store) committer() {
	defer close(s.stopped)
	for first := range s.reqs {
		batch := []*updateReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.runBatch(batch)
	}
}

func (s *Store) runBatch(batch []*updateReq) {
	ctx := context.Background()
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.done <- updateResult{err: fmt.Errorf("sqlite: begin: %w", err)}
		}
		return
	}
	var committed []*updateReq
	abort := func(err error, rest []*updateReq) {
		_ = sqlTx.Rollback()
		for _, r := range append(committed, rest...) {
			r.done <- updateResult{err: err}
		}
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- updateResult{err: err}
			continue
		}
		sp := "u" + strconv.Itoa(i)
		if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
			abort(fmt.Errorf("sqlite: savepoint: %w", err), batch[i:])
			return
		}
		t := &tx{tx: sqlTx, stmts: s.ws, now: s.now}
		res := runUpdate(r, t)
		if res.err == nil && !res.panicked && t.err != nil {
			res.err = fmt.Errorf("sqlite: not committed, a statement failed: %w", t.err)
		}
		if res.err != nil || res.panicked {
			// This update's writes go; the batch goes on.
			if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO "+sp); err != nil {
				r.done <- res
				abort(fmt.Errorf("sqlite: a failed update in the same batch could not be undone: %w", err), batch[i+1:])
				return
			}
			if _, err := sqlTx.ExecContext(ctx, "RELEASE "+sp); err != nil {
				r.done <- res
				abort(fmt.Errorf("sqlite: release savepoint: %w", err), batch[i+1:])
				return
			}
			r.done <- res
			continue
		}
		if _, err := sqlTx.ExecContext(ctx, "RELEASE "+sp); err != nil {
			abort(fmt.Errorf("sqlite: release savepoint: %w", err), batch[i:])
			return
		}
		committed = append(committed, r)
	}
	if len(committed) == 0 {
		_ = sqlTx.Rollback()
		return
	}
	if err := sqlTx.Commit(); err != nil {
		for _, r := range committed {
			r.done <- updateResult{err: fmt.Errorf("sqlite: commit: %w", err)}
		}
		return
	}
	for _, r := range committed {
		r.done <- updateResult{}
	}
}

// runUpdate runs one update's fn, catching its panic for its caller. The
// statements run with the caller's values but not its cancellation: an
// interrupted statement would make SQLite roll back the whole batch.
func runUpdate(r *updateReq, t *tx) (res updateResult) {
	defer func() {
		t.closed = true // the tx is over for fn, whatever happens next
		if v := recover(); v != nil {
			res = updateResult{panicked: true, panicValue: v}
		}
	}()
	return updateResult{err: r.fn(context.WithoutCancel(r.ctx), t)}
}

// Flow reads a committed flow.
func (s *Store) Flow(ctx context.Context, registrationID string) (store.Flow, error) {
	f, err := getFlow(ctx, s.rFlow, registrationID)
	if err != nil {
		return store.Flow{}, fmt.Errorf("sqlite: flow %q: %w", registrationID, err)
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
		WHERE status = 'waiting' AND deadline IS NOT NULL AND deadline <= ?
		ORDER BY deadline, registration_id LIMIT ?`, now.UnixMicro(), limit)
}

// WaitingFlows returns up to limit waiting flows (waiting for waitingFor,
// or for anything when it is ""), longest waiting first.
func (s *Store) WaitingFlows(ctx context.Context, waitingFor string, limit int) ([]store.Flow, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.queryFlows(ctx, "waiting flows", `SELECT `+flowColumns+` FROM flows
		WHERE status = 'waiting' AND (?1 = '' OR waiting_for = ?1)
		ORDER BY updated_at, registration_id LIMIT ?2`, waitingFor, limit)
}

// WaitingCounts counts the waiting flows by what they wait for.
func (s *Store) WaitingCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT waiting_for, count(*) FROM flows WHERE status = 'waiting' GROUP BY waiting_for`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: waiting counts: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			return nil, fmt.Errorf("sqlite: waiting counts: %w", err)
		}
		counts[w] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: waiting counts: %w", err)
	}
	return counts, nil
}

// queryFlows runs a query of flowColumns.
func (s *Store) queryFlows(ctx context.Context, what, query string, args ...any) ([]store.Flow, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var flows []store.Flow
	for rows.Next() {
		f, err := scanFlow(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		flows = append(flows, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return flows, nil
}

// PendingOutbox returns up to limit outbox records, lowest Seq first.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, subject, key, headers, payload, created_at
		FROM outbox ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending outbox: %w", err)
	}
	defer rows.Close()
	var recs []outbox.Record
	for rows.Next() {
		var (
			r       outbox.Record
			headers string
			created int64
		)
		if err := rows.Scan(&r.Seq, &r.ID, &r.Subject, &r.Key, &headers, &r.Payload, &created); err != nil {
			return nil, fmt.Errorf("sqlite: pending outbox: %w", err)
		}
		if r.Headers, err = outbox.DecodeHeaders(headers); err != nil {
			return nil, fmt.Errorf("sqlite: pending outbox: seq %d: %w", r.Seq, err)
		}
		r.CreatedAt = fromMicro(created)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pending outbox: %w", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: pending outbox: %w", err)
	}
	return recs, nil
}

// DeleteOutbox removes the records with these sequences in one statement.
func (s *Store) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := deleteSeqs(ctx, s.w, seqs); err != nil {
		return fmt.Errorf("sqlite: delete outbox: %w", err)
	}
	return nil
}

// execer is what deleteSeqs needs: the writer pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// deleteSeqs deletes outbox rows in one statement, whatever their number:
// the sequences travel as one JSON array.
func deleteSeqs(ctx context.Context, db execer, seqs []int64) error {
	list, err := json.Marshal(seqs)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))`, string(list))
	return err
}

// OutboxStats returns how many records wait and when the oldest was
// appended.
func (s *Store) OutboxStats(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM outbox`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlite: outbox stats: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, fromMicro(oldest.Int64), nil
}

// AcquireLease takes or renews the named lease for holder until now+ttl,
// by the Go clock of this process.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("sqlite: acquire lease %q: ttl %v is not positive", name, ttl)
	}
	now := s.now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4`,
		name, holder, now.Add(ttl).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %q: %w", name, err)
	}
	return n == 1, nil
}

// Checkpoint returns the value set under name, "" when none.
func (s *Store) Checkpoint(ctx context.Context, name string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM checkpoints WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: checkpoint %q: %w", name, err)
	}
	return v, nil
}

// SetCheckpoint sets the value of name.
func (s *Store) SetCheckpoint(ctx context.Context, name, value string) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO checkpoints (name, value, updated_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, value, s.now().UnixMicro()); err != nil {
		return fmt.Errorf("sqlite: set checkpoint %q: %w", name, err)
	}
	return nil
}

// ReleaseLease gives the lease up if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("sqlite: release lease %q: %w", name, err)
	}
	return nil
}

// getFlow reads one flow with a statement prepared from sqlGetFlow;
// store.ErrNotFound if there is none.
func getFlow(ctx context.Context, stmt *sql.Stmt, registrationID string) (store.Flow, error) {
	f, err := scanFlow(stmt.QueryRowContext(ctx, registrationID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Flow{}, store.ErrNotFound
	}
	return f, err
}

// scanFlow reads flowColumns from a row.
func scanFlow(row interface{ Scan(dest ...any) error }) (store.Flow, error) {
	var (
		f                store.Flow
		status           string
		deadline         sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&f.RegistrationID, &f.Flow, &f.Tenant, &status, &f.Step, &f.Seq, &f.WaitingFor,
		&deadline, &f.Data, &f.Version, &created, &updated); err != nil {
		return store.Flow{}, err
	}
	f.Status = store.Status(status)
	if deadline.Valid {
		f.Deadline = fromMicro(deadline.Int64)
	}
	f.CreatedAt = fromMicro(created)
	f.UpdatedAt = fromMicro(updated)
	return f, nil
}

// fromMicro turns stored microseconds since the Unix epoch into a UTC time.
func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }
