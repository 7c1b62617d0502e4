package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockClass is the first key of the advisory lock taken while the schema
// is created or upgraded ("regi"); the second is a hash of the schema name,
// so that stores in different schemas of one database do not wait for
// each other.
const lockClass = 0x72656769

// migrations returns the schema changes in order: migrations()[i] brings
// the schema from version i to version i+1. Append to it; never edit a step
// that has shipped.
func migrations() []string {
	return []string{
		// 1: the initial schema.
		`CREATE TABLE IF NOT EXISTS flows (
			registration_id text PRIMARY KEY,
			flow            text NOT NULL,
			tenant          text NOT NULL,
			status          text NOT NULL,
			step            text NOT NULL,
			seq             bigint NOT NULL,
			waiting_for     text NOT NULL,
			deadline        timestamptz,         -- NULL: none
			data            bytea NOT NULL,
			version         bigint NOT NULL,
			created_at      timestamptz NOT NULL,
			updated_at      timestamptz NOT NULL
		);
		CREATE INDEX IF NOT EXISTS flows_due ON flows (deadline, registration_id)
			WHERE status = 'waiting' AND deadline IS NOT NULL;
		CREATE TABLE IF NOT EXISTS ledger (
			registration_id text NOT NULL,
			command_type    text NOT NULL,
			msg_id          text NOT NULL,
			claimed_at      timestamptz NOT NULL,
			PRIMARY KEY (registration_id, command_type)
		);
		CREATE TABLE IF NOT EXISTS outbox (
			seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			id         text NOT NULL UNIQUE,
			subject    text NOT NULL,
			key        text NOT NULL,
			headers    text NOT NULL,            -- JSON object
			payload    bytea NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS leases (
			name       text PRIMARY KEY,
			holder     text NOT NULL,
			expires_at timestamptz NOT NULL
		);`,
		// 2: pollers' checkpoints.
		`CREATE TABLE IF NOT EXISTS checkpoints (
			name       text PRIMARY KEY,
			value      text NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now()
		);`,
		// 3: waiting flows by what they wait for (status, metrics).
		`CREATE INDEX IF NOT EXISTS flows_waiting ON flows (waiting_for, updated_at, registration_id) WHERE status = 'waiting';`,
	}
}

// migrate creates or upgrades the schema in one transaction that holds an
// advisory lock, so that processes opening the same database together
// take turns.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	if err := migrateTx(ctx, tx); err != nil {
		if rbErr := rollback(ctx, tx); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

// migrateTx brings the schema to the last version inside tx.
func migrateTx(ctx context.Context, tx pgx.Tx) error {
	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema of the search_path exists")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(lockClass), *schema); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		id      int PRIMARY KEY CHECK (id = 1),
		version int NOT NULL
	)`); err != nil {
		return err
	}
	var version int
	switch err := tx.QueryRow(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&version); {
	case errors.Is(err, pgx.ErrNoRows):
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
		if _, err := tx.Exec(ctx, steps[i]); err != nil {
			return fmt.Errorf("to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_version (id, version) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version`, len(steps)); err != nil {
		return err
	}
	return nil
}
