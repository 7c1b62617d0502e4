package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// errTxClosed is returned by a tx used after its Update returned.
var errTxClosed = errors.New("transaction is over: tx used after Update returned")

// tx is the store.Tx of one Update.
type tx struct {
	tx     pgx.Tx
	err    error // the first error that spoiled the transaction
	closed bool  // Update has returned
}

var _ store.Tx = (*tx)(nil)

// check records err when it spoils the transaction (anything but the
// sentinel answers) and returns it. A deadlock or serialization failure
// spoils the transaction too, but matches store.ErrConflict, since the
// remedy is the same: run the Update again.
func (t *tx) check(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
		err = fmt.Errorf("%w: %w", store.ErrConflict, err)
		if t.err == nil {
			t.err = err
		}
		return err
	}
	if t.err == nil &&
		!errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrConflict) {
		t.err = err
	}
	return err
}

// Flow reads a flow as this transaction sees it.
func (t *tx) Flow(ctx context.Context, registrationID string) (store.Flow, error) {
	if t.closed {
		return store.Flow{}, fmt.Errorf("postgres: flow %q: %w", registrationID, errTxClosed)
	}
	f, err := getFlow(ctx, t.tx, registrationID)
	if err != nil {
		return store.Flow{}, t.check(fmt.Errorf("postgres: flow %q: %w", registrationID, err))
	}
	return f, nil
}

// CreateFlow inserts f with Version 1 and CreatedAt = UpdatedAt = now().
func (t *tx) CreateFlow(ctx context.Context, f store.Flow) error {
	if t.closed {
		return fmt.Errorf("postgres: create flow %q: %w", f.RegistrationID, errTxClosed)
	}
	if f.RegistrationID == "" {
		return t.check(errors.New("postgres: create flow: empty registration id"))
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO flows (`+flowColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, now(), now()) ON CONFLICT (registration_id) DO NOTHING`,
		f.RegistrationID, f.Flow, f.Tenant, string(f.Status), f.Step, f.Seq, f.WaitingFor,
		deadline(f.Deadline), data(f.Data))
	if err != nil {
		return t.check(fmt.Errorf("postgres: create flow %q: %w", f.RegistrationID, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: create flow %q: %w", f.RegistrationID, store.ErrExists)
	}
	return nil
}

// UpdateFlow writes f if the stored Version still equals f.Version.
func (t *tx) UpdateFlow(ctx context.Context, f store.Flow) error {
	if t.closed {
		return fmt.Errorf("postgres: update flow %q: %w", f.RegistrationID, errTxClosed)
	}
	tag, err := t.tx.Exec(ctx, `UPDATE flows SET flow = $1, tenant = $2, status = $3, step = $4, seq = $5,
		waiting_for = $6, deadline = $7, data = $8, version = version + 1, updated_at = now()
		WHERE registration_id = $9 AND version = $10`,
		f.Flow, f.Tenant, string(f.Status), f.Step, f.Seq, f.WaitingFor, deadline(f.Deadline), data(f.Data),
		f.RegistrationID, f.Version)
	if err != nil {
		return t.check(fmt.Errorf("postgres: update flow %q: %w", f.RegistrationID, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	switch err := t.tx.QueryRow(ctx, `SELECT 1 FROM flows WHERE registration_id = $1`, f.RegistrationID).Scan(&one); {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: update flow %q: %w", f.RegistrationID, store.ErrNotFound)
	case err != nil:
		return t.check(fmt.Errorf("postgres: update flow %q: %w", f.RegistrationID, err))
	default:
		return fmt.Errorf("postgres: update flow %q version %d: %w", f.RegistrationID, f.Version, store.ErrConflict)
	}
}

// ClaimCommand records (registrationID, commandType) in the ledger; false
// when it is there already. A claim that another transaction holds but
// has not committed makes this one wait for it.
func (t *tx) ClaimCommand(ctx context.Context, registrationID, commandType, msgID string) (bool, error) {
	if t.closed {
		return false, fmt.Errorf("postgres: claim command: %w", errTxClosed)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO ledger (registration_id, command_type, msg_id, claimed_at)
		VALUES ($1, $2, $3, now()) ON CONFLICT (registration_id, command_type) DO NOTHING`,
		registrationID, commandType, msgID)
	if err != nil {
		return false, t.check(fmt.Errorf("postgres: claim command %q %q: %w", registrationID, commandType, err))
	}
	return tag.RowsAffected() == 1, nil
}

// Enqueue appends msgs to the outbox, all or none, in one statement.
func (t *tx) Enqueue(ctx context.Context, msgs ...outbox.Message) error {
	if t.closed {
		return fmt.Errorf("postgres: enqueue: %w", errTxClosed)
	}
	if len(msgs) == 0 {
		return nil
	}
	var (
		idCol      = make([]string, len(msgs))
		subjectCol = make([]string, len(msgs))
		keyCol     = make([]string, len(msgs))
		headerCol  = make([]string, len(msgs))
		payloadCol = make([][]byte, len(msgs))
	)
	for i, m := range msgs {
		headers, err := outbox.EncodeHeaders(m.Headers)
		if err != nil {
			return t.check(fmt.Errorf("postgres: enqueue %q: %w", m.ID, err))
		}
		idCol[i], subjectCol[i], keyCol[i], headerCol[i], payloadCol[i] = m.ID, m.Subject, m.Key, headers, data(m.Payload)
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO outbox (id, subject, key, headers, payload)
		SELECT id, subject, key, headers, payload
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])
			WITH ORDINALITY AS m (id, subject, key, headers, payload, ord)
		ORDER BY ord
		ON CONFLICT (id) DO NOTHING
		RETURNING seq, id`, idCol, subjectCol, keyCol, headerCol, payloadCol)
	if err != nil {
		return t.check(fmt.Errorf("postgres: enqueue: %w", err))
	}
	var (
		seqs     []int64
		inserted = make(map[string]int, len(msgs))
	)
	for rows.Next() {
		var (
			seq int64
			id  string
		)
		if err := rows.Scan(&seq, &id); err != nil {
			rows.Close()
			return t.check(fmt.Errorf("postgres: enqueue: %w", err))
		}
		seqs = append(seqs, seq)
		inserted[id]++
	}
	if err := rows.Err(); err != nil {
		return t.check(fmt.Errorf("postgres: enqueue: %w", err))
	}
	if len(seqs) == len(msgs) {
		return nil
	}
	// Some IDs were in the outbox already: take back what this call added,
	// so that it appended none, and name the first duplicate.
	if len(seqs) > 0 {
		if _, err := t.tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
			return t.check(fmt.Errorf("postgres: enqueue: take back: %w", err))
		}
	}
	for _, m := range msgs {
		if inserted[m.ID] == 0 {
			return fmt.Errorf("postgres: enqueue %q: %w", m.ID, store.ErrExists)
		}
		inserted[m.ID]--
	}
	return fmt.Errorf("postgres: enqueue: %w", store.ErrExists) // not reached: some ID was skipped
}

// deadline is the stored form of a Flow.Deadline: NULL for none.
func deadline(d time.Time) *time.Time {
	if d.IsZero() {
		return nil
	}
	return &d
}

// data is the stored form of bytes: never NULL.
func data(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
