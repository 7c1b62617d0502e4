// Package dlq is the operators' tooling for registrar's dead letters: the
// messages on the dead-letter stream (REGISTRATION_DLQ, subjects
// registration.dlq.<handler>) that a handler could not process. A dead
// letter keeps the original body (secrets already redacted) and headers and
// adds the Registrar-* headers written by the handlers' runtime
// (handlers.HeaderOriginalSubject, handlers.HeaderReason, …).
//
// A Client lists dead letters (List, Get), groups them by cause (Groups:
// one group per flow, handler and error code), and replays, edits or purges
// them. `registrar dlq` is its command line.
//
// # Replay
//
// Replay publishes each dead letter's body back to its original subject, at
// most opts.Rate messages per second, and is safe to run twice, or by two
// operators at once:
//
//   - The replayed message carries the dead letter's headers minus the
//     dead-letter headers (Registrar-Reason, Registrar-Handler, …, and any
//     Nats-* header), except Registrar-Original-Msg-Id: the original
//     message id stays in the headers. It also carries
//     Registrar-Replay-Of (<stream>:<seq>), Registrar-Replayed-At and
//     Registrar-Replayed-By.
//   - Its Nats-Msg-Id is "replay:<stream>:<seq>". It is new, so the server's
//     de-duplication of the original id (within the stream's duplicate
//     window) does not swallow the replay; and it is deterministic, so two
//     replays of the same dead letter publish the same id and the server
//     keeps only the first. A publish the server reports as a duplicate is
//     "already_replayed", not "replayed".
//   - The publish waits for the server's acknowledgement; then the dead
//     letter is deleted from the stream, so it cannot be selected again.
//     A dead letter already gone when its turn comes (another operator
//     replayed or purged it) is "already_replayed" too and is not
//     published: this also covers a second replay after the duplicate
//     window.
//   - A dead letter whose publish failed stays in the stream; one published
//     but not deleted is reported as failed (replaying it again within the
//     duplicate window is harmless: the server drops it).
//
// Edit publishes a corrected body instead, with Nats-Msg-Id
// "edit:<stream>:<seq>:<first 12 hex digits of the body's SHA-256>" (the
// same correction published twice is kept once) and
// Registrar-Edited-From (<stream>:<seq>); the dead letter is kept, to be
// purged once the correction went through.
package dlq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/registrar-dev/registrar/handlers"
)

// Headers set on replayed and edited messages, besides handlers.HeaderReplayOf
// and handlers.HeaderEditedFrom.
const (
	HeaderReplayedAt = "Registrar-Replayed-At" // RFC3339Nano
	HeaderReplayedBy = "Registrar-Replayed-By" // ReplayOptions.By
)

// deadLetterHeaders are the headers a dead letter adds to the original
// message, dropped on replay. HeaderOriginalMsgID is kept, and so are
// HeaderFlow and HeaderRegistrationID: step messages carry them as their
// own headers (a handler that fails on a replayed step names the flow with
// them).
var deadLetterHeaders = []string{
	handlers.HeaderOriginalSubject,
	handlers.HeaderReason,
	handlers.HeaderHandler,
	handlers.HeaderErrorCode,
	handlers.HeaderAttempts,
	handlers.HeaderDeliveries,
	handlers.HeaderFirstFailure,
	handlers.HeaderLastFailure,
	handlers.HeaderDeadLetteredAt,
	handlers.HeaderTenant,
	// Marks of an earlier replay or edit, set afresh.
	handlers.HeaderReplayOf,
	handlers.HeaderEditedFrom,
	HeaderReplayedAt,
	HeaderReplayedBy,
}

// ErrNotFound is returned by Get for a sequence the stream does not hold.
var ErrNotFound = errors.New("dead letter not found")

// DeadLetter is one message of the dead-letter stream.
type DeadLetter struct {
	Seq     uint64    // stream sequence: the ID operators use
	Subject string    // registration.dlq.<handler>
	Stored  time.Time // when the stream stored it

	OriginalSubject string
	OriginalMsgID   string
	Reason          string
	Handler         string
	Code            string
	Flow            string
	RegistrationID  string
	Tenant          string

	Attempts, Deliveries int

	FirstFailure, LastFailure, DeadLetteredAt time.Time

	Header nats.Header // all headers as stored
	Body   []byte
}

// Group returns the stable id of the dead letter's cause, its (Flow,
// Handler, Code): "g-" and the first 10 hex digits of their SHA-256.
func (d DeadLetter) Group() string {
	return groupID(d.Flow, d.Handler, d.Code)
}

func groupID(flow, handler, code string) string {
	sum := sha256.Sum256([]byte(flow + "\x00" + handler + "\x00" + code))
	return "g-" + hex.EncodeToString(sum[:])[:10]
}

// When is when the dead letter was written: DeadLetteredAt, or Stored when
// that header is missing. Filter.Since and the group times use it.
func (d DeadLetter) When() time.Time {
	if !d.DeadLetteredAt.IsZero() {
		return d.DeadLetteredAt
	}
	return d.Stored
}

// directGetHeaders are added by the server to a direct get's answer; they
// are not part of the stored message.
var directGetHeaders = []string{"Nats-Stream", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Subject", "Nats-Last-Sequence", "Nats-Num-Pending"}

// newDeadLetter reads a stored message.
func newDeadLetter(seq uint64, subject string, stored time.Time, h nats.Header, body []byte) DeadLetter {
	hdr := nats.Header{}
	for k, v := range h {
		hdr[k] = slices.Clone(v)
	}
	for _, k := range directGetHeaders {
		hdr.Del(k)
	}
	d := DeadLetter{
		Seq:             seq,
		Subject:         subject,
		Stored:          stored.UTC(),
		OriginalSubject: hdr.Get(handlers.HeaderOriginalSubject),
		OriginalMsgID:   hdr.Get(handlers.HeaderOriginalMsgID),
		Reason:          hdr.Get(handlers.HeaderReason),
		Handler:         hdr.Get(handlers.HeaderHandler),
		Code:            hdr.Get(handlers.HeaderErrorCode),
		Flow:            hdr.Get(handlers.HeaderFlow),
		RegistrationID:  hdr.Get(handlers.HeaderRegistrationID),
		Tenant:          hdr.Get(handlers.HeaderTenant),
		Attempts:        atoi(hdr.Get(handlers.HeaderAttempts)),
		Deliveries:      atoi(hdr.Get(handlers.HeaderDeliveries)),
		FirstFailure:    parseTime(hdr.Get(handlers.HeaderFirstFailure)),
		LastFailure:     parseTime(hdr.Get(handlers.HeaderLastFailure)),
		DeadLetteredAt:  parseTime(hdr.Get(handlers.HeaderDeadLetteredAt)),
		Header:          hdr,
		Body:            body,
	}
	if d.Handler == "" {
		d.Handler = strings.TrimPrefix(subject, "registration.dlq.")
	}
	return d
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Filter selects dead letters; its zero value selects all. Every field
// given must match.
type Filter struct {
	Group        string // DeadLetter.Group()
	Flow         string
	Tenant       string
	Registration string // DeadLetter.RegistrationID
	Handler      string
	Code         string
	Since        time.Time // DeadLetter.When() at or after Since
	Seqs         []uint64  // one of these sequences
}

// Match reports whether d passes the filter.
func (f Filter) Match(d DeadLetter) bool {
	switch {
	case f.Group != "" && d.Group() != f.Group,
		f.Flow != "" && d.Flow != f.Flow,
		f.Tenant != "" && d.Tenant != f.Tenant,
		f.Registration != "" && d.RegistrationID != f.Registration,
		f.Handler != "" && d.Handler != f.Handler,
		f.Code != "" && d.Code != f.Code,
		!f.Since.IsZero() && d.When().Before(f.Since),
		len(f.Seqs) > 0 && !slices.Contains(f.Seqs, d.Seq):
		return false
	}
	return true
}

// GroupSummary describes the dead letters of one cause.
type GroupSummary struct {
	ID      string    `json:"id"`
	Flow    string    `json:"flow"`
	Handler string    `json:"handler"`
	Code    string    `json:"code"`
	Count   int       `json:"count"`
	First   time.Time `json:"first"`  // the earliest DeadLetter.When()
	Last    time.Time `json:"last"`   // the latest DeadLetter.When()
	Reason  string    `json:"reason"` // the most recent reason, cut to 200 characters
}

// Groups summarises dls by cause, largest group first (then by ID).
func Groups(dls []DeadLetter) []GroupSummary {
	byID := map[string]*GroupSummary{}
	latest := map[string]DeadLetter{}
	for _, d := range dls {
		id := d.Group()
		g, ok := byID[id]
		if !ok {
			g = &GroupSummary{ID: id, Flow: d.Flow, Handler: d.Handler, Code: d.Code}
			byID[id] = g
		}
		g.Count++
		w := d.When()
		if g.First.IsZero() || w.Before(g.First) {
			g.First = w
		}
		if l, ok := latest[id]; !ok || w.After(l.When()) || (w.Equal(l.When()) && d.Seq > l.Seq) {
			latest[id] = d
			g.Last = w
			g.Reason = truncateRunes(d.Reason, 200)
		}
	}
	out := make([]GroupSummary, 0, len(byID))
	for _, g := range byID {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// truncateRunes cuts s to at most n characters.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
