package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The statements transactions run. They are prepared once on the writer
// connection: parsing them again in every transaction would cost about a
// quarter of a typical Update.
const (
	// flowColumns lists the flows columns in the order scanFlow reads them.
	flowColumns = `registration_id, flow, tenant, status, step, seq, waiting_for, deadline, data, version, created_at, updated_at`

	sqlGetFlow    = `SELECT ` + flowColumns + ` FROM flows WHERE registration_id = ?`
	sqlCreateFlow = `INSERT INTO flows (` + flowColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (registration_id) DO NOTHING`
	sqlUpdateFlow = `UPDATE flows SET flow = ?, tenant = ?, status = ?, step = ?, seq = ?,
		waiting_for = ?, deadline = ?, data = ?, version = version + 1, updated_at = ?
		WHERE registration_id = ? AND version = ?`
	sqlFlowExists = `SELECT 1 FROM flows WHERE registration_id = ?`
	sqlClaim      = `INSERT INTO ledger (registration_id, command_type, msg_id, claimed_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (registration_id, command_type) DO NOTHING`
	sqlEnqueue = `INSERT INTO outbox (id, subject, key, headers, payload, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq`
)

// stmts are the prepared statements of transactions.
type stmts struct {
	getFlow, createFlow, updateFlow, flowExists, claim, enqueue *sql.Stmt
}

// prepare prepares the transactions' statements on db.
func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := &stmts{}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.getFlow, sqlGetFlow},
		{&s.createFlow, sqlCreateFlow},
		{&s.updateFlow, sqlUpdateFlow},
		{&s.flowExists, sqlFlowExists},
		{&s.claim, sqlClaim},
		{&s.enqueue, sqlEnqueue},
	} {
		stmt, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sqlite: open: prepare: %w", err), s.close())
		}
		*p.dst = stmt
	}
	return s, nil
}

// close closes the statements prepared so far.
func (s *stmts) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.getFlow, s.createFlow, s.updateFlow, s.flowExists, s.claim, s.enqueue} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
