// Package store keeps registrar's durable state: flows, the ledger of
// processed commands, the outbox and leases. Everything a step changes is
// written in one transaction (Store.Update), so the flow's state and the
// messages it emits are committed together or not at all.
//
// Two implementations share this interface and one contract test suite
// (package storetest): SQLite (embedded, the default) and PostgreSQL.
//
// Layout: this package holds only the contract. The implementations live in
// store/sqlite and store/postgres and import this package for its types;
// store/stores opens one of them from a DSN (it cannot live here without an
// import cycle); store/storetest is the contract suite and benchmarks that
// every implementation runs.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/registrar-dev/registrar/outbox"
)

var (
	// ErrNotFound: no row with that key.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a row with that key exists already (CreateFlow, or Enqueue
	// of a message whose ID is in the outbox already).
	ErrExists = errors.New("store: already exists")
	// ErrConflict: UpdateFlow lost an optimistic-concurrency race: the flow's
	// Version changed since it was read. Re-read and decide again. Update
	// also returns it when the database ended the transaction to break a
	// deadlock (PostgreSQL): running it again is the remedy there too.
	ErrConflict = errors.New("store: version conflict")
)

// Status is where a flow stands.
type Status string

// The statuses a flow can be in.
const (
	StatusRunning   Status = "running"   // a step message is on its way or being handled
	StatusWaiting   Status = "waiting"   // waits for an outside input (WaitingFor), until Deadline
	StatusSuspended Status = "suspended" // a step was dead-lettered; a replay resumes it
	StatusCompleted Status = "completed" // terminal
	StatusFailed    Status = "failed"    // terminal
)

// Terminal reports whether s ends a flow.
func (s Status) Terminal() bool { return s == StatusCompleted || s == StatusFailed }

// Flow is the durable state of one registration.
type Flow struct {
	RegistrationID string // primary key
	Flow           string // the flow type, e.g. "resamania.register"
	Tenant         string
	Status         Status
	Step           string    // the step the flow is at
	Seq            int64     // step sequence; a step message carries the Seq it was sent for
	WaitingFor     string    // with StatusWaiting: what for ("otp"); empty otherwise
	Deadline       time.Time // zero: none; with StatusWaiting: when waiting gives up
	Data           []byte    // the flow's own JSON (command, results, step history); opaque to the store
	Version        int64     // set by the store: 1 on create, +1 on every update
	CreatedAt      time.Time // set by the store on create
	UpdatedAt      time.Time // set by the store on create and update
}

// Tx is what a transaction can do. It is only valid inside the function
// given to Store.Update, and not safe for concurrent use.
//
// ErrNotFound, ErrExists and ErrConflict are answers: the transaction stays
// usable after them, and a method that returns one has changed nothing. Any
// other error spoils the transaction: Update then rolls back and returns
// that error even if fn returns nil, so a swallowed database error can never
// commit half of fn's writes.
type Tx interface {
	// Flow reads a flow; ErrNotFound if there is none.
	Flow(ctx context.Context, registrationID string) (Flow, error)
	// CreateFlow inserts f with Version 1; ErrExists if the id is taken.
	CreateFlow(ctx context.Context, f Flow) error
	// UpdateFlow writes f if the stored Version still equals f.Version,
	// and increments the stored Version; ErrConflict otherwise, ErrNotFound
	// if the flow does not exist.
	UpdateFlow(ctx context.Context, f Flow) error
	// ClaimCommand records a command in the ledger of processed commands,
	// keyed by (registrationID, commandType). It returns false when that
	// key was claimed before (the command is a duplicate).
	ClaimCommand(ctx context.Context, registrationID, commandType, msgID string) (bool, error)
	// Enqueue appends messages to the outbox, in order. It appends all of
	// them or none: ErrExists if an ID is in the outbox already (or twice in
	// msgs).
	Enqueue(ctx context.Context, msgs ...outbox.Message) error
}

// Store is the durable state of the service.
type Store interface {
	// Update runs fn in one transaction and commits it when fn returns nil;
	// it rolls back and returns fn's error otherwise. fn must not keep tx,
	// and must not call the Store's writing methods (with SQLite they wait
	// for the one writer connection that fn's transaction holds); the
	// Store's reads see only committed state. Update does not retry: on
	// ErrConflict the caller re-runs it.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Flow reads a flow outside a transaction; ErrNotFound if there is none.
	Flow(ctx context.Context, registrationID string) (Flow, error)
	// DueFlows returns up to limit waiting flows whose Deadline is not after
	// now, earliest first. Flows without a Deadline are never due. A limit
	// of zero or less returns none.
	DueFlows(ctx context.Context, now time.Time, limit int) ([]Flow, error)
	// WaitingFlows returns up to limit waiting flows that wait for
	// waitingFor ("" for anything), longest waiting (oldest UpdatedAt)
	// first. A limit of zero or less returns none.
	WaitingFlows(ctx context.Context, waitingFor string, limit int) ([]Flow, error)
	// WaitingCounts counts the waiting flows by WaitingFor.
	WaitingCounts(ctx context.Context) (map[string]int, error)

	// PendingOutbox returns up to limit outbox records, lowest Seq first. A
	// limit of zero or less returns none.
	PendingOutbox(ctx context.Context, limit int) ([]outbox.Record, error)
	// DeleteOutbox removes the records with these sequences (sent ones), in
	// one statement. Sequences that are not there are ignored.
	DeleteOutbox(ctx context.Context, seqs []int64) error
	// OutboxStats returns how many records wait and when the oldest was
	// appended (zero time when none wait).
	OutboxStats(ctx context.Context) (pending int, oldest time.Time, err error)

	// AcquireLease takes or renews the named lease for holder until now+ttl.
	// It returns false when another holder has it and it has not expired.
	// ttl must be positive. Which clock measures expiry is up to the
	// implementation (see its package doc).
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it; it does nothing
	// otherwise.
	ReleaseLease(ctx context.Context, name, holder string) error

	// Checkpoint returns the value last set under name ("" when none): a
	// poller's position in a vendor's data, such as a watermark.
	Checkpoint(ctx context.Context, name string) (string, error)
	// SetCheckpoint sets the value of name, replacing the one before.
	SetCheckpoint(ctx context.Context, name, value string) error

	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
