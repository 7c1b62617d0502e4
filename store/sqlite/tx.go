package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/store"
)

// errTxClosed is returned by a tx used after its Update returned.
var errTxClosed = errors.New("transaction is over: tx used after Update returned")

// tx is the store.Tx of one Update.
type tx struct {
	tx     *sql.Tx
	stmts  *stmts // prepared on the writer connection, which tx runs on
	now    func() time.Time
	err    error // the first error that spoiled the transaction
	closed bool  // Update has returned
}

var _ store.Tx = (*tx)(nil)

// check records err when it spoils the transaction (anything but the
// sentinel answers) and returns it.
func (t *tx) check(err error) error {
	if err != nil && t.err == nil &&
		!errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrConflict) {
		t.err = err
	}
	return err
}

// Flow reads a flow as this transaction sees it.
func (t *tx) Flow(ctx context.Context, registrationID string) (store.Flow, error) {
	if t.closed {
		return store.Flow{}, fmt.Errorf("sqlite: flow %q: %w", registrationID, errTxClosed)
	}
	f, err := getFlow(ctx, t.tx.StmtContext(ctx, t.stmts.getFlow), registrationID)
	if err != nil {
		return store.Flow{}, t.check(fmt.Errorf("sqlite: flow %q: %w", registrationID, err))
	}
	return f, nil
}

// CreateFlow inserts f with Version 1 and CreatedAt = UpdatedAt = now.
func (t *tx) CreateFlow(ctx context.Context, f store.Flow) error {
	if t.closed {
		return fmt.Errorf("sqlite: create flow %q: %w", f.RegistrationID, errTxClosed)
	}
	if f.RegistrationID == "" {
		return t.check(errors.New("sqlite: create flow: empty registration id"))
	}
	now := t.now().UnixMicro()
	res, err := t.tx.StmtContext(ctx, t.stmts.createFlow).ExecContext(ctx,
		f.RegistrationID, f.Flow, f.Tenant, string(f.Status), f.Step, f.Seq, f.WaitingFor,
		deadline(f.Deadline), data(f.Data), now, now)
	if err != nil {
		return t.check(fmt.Errorf("sqlite: create flow %q: %w", f.RegistrationID, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.check(fmt.Errorf("sqlite: create flow %q: %w", f.RegistrationID, err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: create flow %q: %w", f.RegistrationID, store.ErrExists)
	}
	return nil
}

// UpdateFlow writes f if the stored Version still equals f.Version.
func (t *tx) UpdateFlow(ctx context.Context, f store.Flow) error {
	if t.closed {
		return fmt.Errorf("sqlite: update flow %q: %w", f.RegistrationID, errTxClosed)
	}
	res, err := t.tx.StmtContext(ctx, t.stmts.updateFlow).ExecContext(ctx,
		f.Flow, f.Tenant, string(f.Status), f.Step, f.Seq, f.WaitingFor, deadline(f.Deadline), data(f.Data),
		t.now().UnixMicro(), f.RegistrationID, f.Version)
	if err != nil {
		return t.check(fmt.Errorf("sqlite: update flow %q: %w", f.RegistrationID, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.check(fmt.Errorf("sqlite: update flow %q: %w", f.RegistrationID, err))
	}
	if n == 1 {
		return nil
	}
	var one int
	switch err := t.tx.StmtContext(ctx, t.stmts.flowExists).QueryRowContext(ctx, f.RegistrationID).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: update flow %q: %w", f.RegistrationID, store.ErrNotFound)
	case err != nil:
		return t.check(fmt.Errorf("sqlite: update flow %q: %w", f.RegistrationID, err))
	default:
		return fmt.Errorf("sqlite: update flow %q version %d: %w", f.RegistrationID, f.Version, store.ErrConflict)
	}
}

// ClaimCommand records (registrationID, commandType) in the ledger; false
// when it is there already.
func (t *tx) ClaimCommand(ctx context.Context, registrationID, commandType, msgID string) (bool, error) {
	if t.closed {
		return false, fmt.Errorf("sqlite: claim command: %w", errTxClosed)
	}
	res, err := t.tx.StmtContext(ctx, t.stmts.claim).ExecContext(ctx,
		registrationID, commandType, msgID, t.now().UnixMicro())
	if err != nil {
		return false, t.check(fmt.Errorf("sqlite: claim command %q %q: %w", registrationID, commandType, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.check(fmt.Errorf("sqlite: claim command %q %q: %w", registrationID, commandType, err))
	}
	return n == 1, nil
}

// Enqueue appends msgs to the outbox, all or none.
func (t *tx) Enqueue(ctx context.Context, msgs ...outbox.Message) error {
	if t.closed {
		return fmt.Errorf("sqlite: enqueue: %w", errTxClosed)
	}
	if len(msgs) == 0 {
		return nil
	}
	now := t.now().UnixMicro()
	insert := t.tx.StmtContext(ctx, t.stmts.enqueue)
	seqs := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		// On a failure other than a duplicate ID, what this call added
		// stays: the transaction is spoiled and will not commit.
		headers, err := outbox.EncodeHeaders(m.Headers)
		if err != nil {
			return t.check(fmt.Errorf("sqlite: enqueue %q: %w", m.ID, err))
		}
		var seq int64
		err = insert.QueryRowContext(ctx, m.ID, m.Subject, m.Key, headers, data(m.Payload), now).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			// The ID is in the outbox already: take back what this call
			// added, so that it appended none.
			if err := t.unenqueue(ctx, seqs); err != nil {
				return t.check(fmt.Errorf("sqlite: enqueue %q: %w", m.ID, err))
			}
			return fmt.Errorf("sqlite: enqueue %q: %w", m.ID, store.ErrExists)
		}
		if err != nil {
			return t.check(fmt.Errorf("sqlite: enqueue %q: %w", m.ID, err))
		}
		seqs = append(seqs, seq)
	}
	return nil
}

// unenqueue deletes the outbox rows this transaction just added.
func (t *tx) unenqueue(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := deleteSeqs(ctx, t.tx, seqs); err != nil {
		return fmt.Errorf("take back: %w", err)
	}
	return nil
}

// deadline is the stored form of a Flow.Deadline: NULL for none.
func deadline(d time.Time) any {
	if d.IsZero() {
		return nil
	}
	return d.UnixMicro()
}

// data is the stored form of bytes: never NULL.
func data(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
