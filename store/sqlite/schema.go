package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations returns the schema changes in order: migrations()[i] brings
// the schema from version i to version i+1. Append to it; never edit a step
// that has shipped.
func migrations() []string {
	return []string{
		// 1: the initial schema. Times are INTEGER microseconds since the
		// Unix epoch, UTC.
		`CREATE TABLE IF NOT EXISTS flows (
			registration_id TEXT PRIMARY KEY,
			flow            TEXT NOT NULL,
			tenant          TEXT NOT NULL,
			status          TEXT NOT NULL,
			step            TEXT NOT NULL,
			seq             INTEGER NOT NULL,
			waiting_for     TEXT NOT NULL,
			deadline        INTEGER,          -- NULL: none
			data            BLOB NOT NULL,
			version         INTEGER NOT NULL,
			created_at      INTEGER NOT NULL,
			updated_at      INTEGER NOT NULL
		) STRICT;
		CREATE INDEX IF NOT EXISTS flows_due ON flows (deadline, registration_id)
			WHERE status = 'waiting' AND deadline IS NOT NULL;
		CREATE TABLE IF NOT EXISTS ledger (
			registration_id TEXT NOT NULL,
			command_type    TEXT NOT NULL,
			msg_id          TEXT NOT NULL,
			claimed_at      INTEGER NOT NULL,
			PRIMARY KEY (registration_id, command_type)
		) STRICT, WITHOUT ROWID;
		CREATE TABLE IF NOT EXISTS outbox (
			seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
			id         TEXT NOT NULL UNIQUE,
			subject    TEXT NOT NULL,
			key        TEXT NOT NULL,
			headers    TEXT NOT NULL,                     -- JSON object
			payload    BLOB NOT NULL,
			created_at INTEGER NOT NULL
		) STRICT;
		CREATE TABLE IF NOT EXISTS leases (
			name       TEXT PRIMARY KEY,
			holder     TEXT NOT NULL,
			expires_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID;`,
		// 2: pollers' checkpoints.
		`CREATE TABLE IF NOT EXISTS checkpoints (
			name       TEXT PRIMARY KEY,
			value      TEXT NOT NULL,
			updated_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID;`,
		// 3: waiting flows by what they wait for (status, metrics).
		`CREATE INDEX IF NOT EXISTS flows_waiting ON flows (waiting_for, updated_at, registration_id) WHERE status = 'waiting';`,
	}
}

// migrate creates or upgrades the schema in one BEGIN IMMEDIATE
// transaction, so two processes opening the same new file do not race.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	if err := migrateTx(ctx, tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			err = errors.Join(err, rbErr)
		}
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return nil
}

// migrateTx brings the schema to the last version inside tx.
func migrateTx(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	) STRICT`); err != nil {
		return err
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		version = 0
	case err != nil:
		return err
	}
	steps := migrations()
	if version > len(steps) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(steps))
	}
	if version == len(steps) {
		return nil
	}
	for i := version; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			return fmt.Errorf("to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (id, version) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version`, len(steps)); err != nil {
		return err
	}
	return nil
}
