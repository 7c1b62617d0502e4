package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/guard"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Dead-letter headers. A dead letter keeps the original message's body and
// headers (its Nats-Msg-Id moves to HeaderOriginalMsgID) and adds these.
const (
	HeaderOriginalSubject = "Registrar-Original-Subject"
	HeaderOriginalMsgID   = "Registrar-Original-Msg-Id"
	HeaderReason          = "Registrar-Reason"
	HeaderHandler         = "Registrar-Handler"
	HeaderErrorCode       = "Registrar-Error-Code"
	HeaderAttempts        = "Registrar-Attempts"
	HeaderDeliveries      = "Registrar-Deliveries"
	HeaderFirstFailure    = "Registrar-First-Failure"
	HeaderLastFailure     = "Registrar-Last-Failure"
	HeaderDeadLetteredAt  = "Registrar-Dead-Lettered-At"
	HeaderFlow            = "Registrar-Flow"
	HeaderRegistrationID  = "Registrar-Registration-Id"
	HeaderTenant          = "Registrar-Tenant"
	// HeaderCommandMsgID is set on rejected events: the Nats-Msg-Id of the
	// rejected command.
	HeaderCommandMsgID = "Registrar-Command-Msg-Id"
	// HeaderReplayOf and HeaderEditedFrom mark a dead letter replayed, as
	// is or edited, by `registrar dlq` ("<stream>:<seq>").
	HeaderReplayOf   = "Registrar-Replay-Of"
	HeaderEditedFrom = "Registrar-Edited-From"
)

// countReplay counts a message replayed from the dead letters.
func (rt *Runtime) countReplay(msg *message.Message, handler string) {
	switch {
	case msg.Metadata.Get(HeaderEditedFrom) != "":
		rt.Metrics.replayed(handler, "edit")
	case msg.Metadata.Get(HeaderReplayOf) != "":
		rt.Metrics.replayed(handler, "replay")
	}
}

// Dead-letter error codes (HeaderErrorCode).
const (
	DLQVendorUnavailable = "vendor_unavailable" // transient vendor failures past the retry budget
	DLQPoison            = "poison"             // a message the handler cannot read
	DLQPanic             = "panic"              // the handler panicked: a bug
	DLQInternal          = "internal"           // an unexpected error: a bug or a misconfiguration
	DLQRejected          = "rejected"           // an invalid command, kept to be fixed and replayed (a rejected event went out)
)

// idNamespace derives deterministic event and message ids, so a step that
// runs twice emits the same ids and the server drops the second publish.
var idNamespace = uuid.MustParse("8f9e6c1a-3b52-4f7e-9d0a-6a1f2e3c4b5d")

func deterministicID(parts ...string) string {
	return uuid.NewSHA1(idNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

// Runtime is what every handler shares: the store, the outbox notifier, the
// retry budget, the clock, logging and metrics.
type Runtime struct {
	Store  store.Store
	Notify func() // wakes the outbox forwarder after a commit; may be nil
	Retry  RetryPolicy
	Logger *slog.Logger
	Now    func() time.Time
	// Metrics may be nil (no metrics).
	Metrics *Metrics
	// Box seals the secrets a flow keeps (a MARTA password); required by
	// flows whose commands carry one.
	Box *secret.Box
	// MaxPark bounds how long a message is parked while its vendor's
	// circuit is open, from its publication; past it, it becomes a dead
	// letter. Default 15 minutes.
	MaxPark time.Duration
}

func (rt *Runtime) maxPark() time.Duration {
	if rt.MaxPark <= 0 {
		return 15 * time.Minute
	}
	return rt.MaxPark
}

// park handles a call refused by an open circuit: the message comes back
// when the breaker lets a probe through (with jitter, so that parked
// messages do not all return at once), or, parked past MaxPark, becomes a
// dead letter. It reports whether it parked.
func (rt *Runtime) park(msg *message.Message, err error, log *slog.Logger) bool {
	maxPark := rt.maxPark()
	now := rt.now()
	if published, perr := time.Parse(time.RFC3339Nano, msg.Metadata.Get(transport.MetaPublishedAt)); perr == nil && now.Sub(published) > maxPark {
		return false
	}
	retryAt, _ := guard.RetryAtOf(err)
	delay := max(retryAt.Sub(now), 100*time.Millisecond)
	delay += time.Duration(rand.Int64N(int64(delay/2) + 1))
	msg.Metadata.Set(transport.MetaPark, delay.String())
	var oe *guard.OpenError
	if errors.As(err, &oe) {
		rt.Metrics.parked(oe.Vendor)
	}
	log.Debug("vendor circuit open: message parked", "delay", delay.Round(time.Millisecond), "err", err)
	return true
}

func (rt *Runtime) now() time.Time {
	if rt.Now != nil {
		return rt.Now().UTC()
	}
	return time.Now().UTC()
}

func (rt *Runtime) log() *slog.Logger {
	if rt.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rt.Logger
}

func (rt *Runtime) notify() {
	if rt.Notify != nil {
		rt.Notify()
	}
}

// Run is one execution of a step: the flow as read before the step, its
// data, and the helpers a step needs.
type Run struct {
	Flow store.Flow
	Data *flowData
	Now  time.Time
	box  *secret.Box
}

// Command decodes the command that started the flow into v.
func (r *Run) Command(v any) error {
	if err := json.Unmarshal(r.Data.Command, v); err != nil {
		return fmt.Errorf("decode flow command: %w", err)
	}
	return nil
}

// Var decodes a result a previous step kept.
func (r *Run) Var(name string, v any) (bool, error) { return r.Data.Var(name, v) }

// Secret opens a secret of the command the intake sealed.
func (r *Run) Secret(name string) (secret.String, error) {
	sealed, ok := r.Data.Sealed[name]
	if !ok || r.box == nil {
		return secret.String{}, fmt.Errorf("the flow keeps no %s", name)
	}
	return r.box.Open(sealed)
}

// Transition is what a step decided. Exactly one of Next and Terminal is set.
type Transition struct {
	// Outcome names what happened, for the flow's history ("found", "created").
	Outcome string
	// Events are emitted in order before the terminal event, if any.
	Events []events.Event
	// Vars are kept for later steps.
	Vars map[string]any
	// Next is the step to run next.
	Next string
	// Terminal ends the flow: *events.Completed or *events.Failed.
	Terminal events.Event
	// Wait, with Next, makes the flow wait for a one-time code at step Next
	// (the key of the flow's OTPVendor) instead of running Next: an
	// otp.requested event is emitted and the OTP handler takes over.
	Wait *OTPWait
	// Stay keeps a waiting flow waiting (an otp.rejected, say): only
	// Events are emitted.
	Stay bool
}

// OTPWait describes a code the vendor sent.
type OTPWait struct {
	Channel           string    // events.ChannelSMS or events.ChannelEmail
	MaskedDestination string    // where it went, masked
	ExpiresAt         time.Time // when the flow gives up waiting
	AttemptsLeft      int       // codes that may still be submitted
}

// valid reports whether the transition says exactly one thing to do.
func (tr Transition) valid() bool {
	n := 0
	if tr.Terminal != nil {
		n++
	}
	if tr.Stay {
		n++
	}
	if tr.Next != "" {
		n++
	}
	return n == 1 && (tr.Wait == nil || tr.Next != "")
}

// Step is one step of a flow.
type Step struct {
	// Name is e.g. "resamania.lookup": the subject suffix of its messages,
	// and (dots replaced) its durable consumer's name.
	Name string
	// Run performs the step. Vendor errors it returns are classified:
	// transient ones are retried within the budget then dead-lettered,
	// permanent ones end the flow with a failed event (vendor_rejected),
	// anything else dead-letters the message at once.
	Run func(ctx context.Context, r *Run) (Transition, error)
}

// errStale: the flow moved on since the step started.
var errStale = errors.New("flow moved on")

// StepHandler returns the Watermill handler of step s.
func (rt *Runtime) StepHandler(s Step) message.NoPublishHandlerFunc {
	return func(msg *message.Message) (err error) {
		handler := ConsumerName(s.Name)
		defer rt.recoverPanic(msg, handler, &err)
		rt.countReplay(msg, handler)
		return rt.handleStep(msg, s, handler)
	}
}

func (rt *Runtime) handleStep(msg *message.Message, s Step, handler string) error {
	ctx := msg.Context()
	var sm stepMessage
	if err := json.Unmarshal(msg.Payload, &sm); err != nil || sm.RegistrationID == "" || sm.Seq <= 0 {
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQPoison, reason: "undecodable step message"})
	}
	log := rt.log().With("registrationId", sm.RegistrationID, "flow", sm.Flow, "step", s.Name, "seq", sm.Seq)

	f, err := rt.Store.Flow(ctx, sm.RegistrationID)
	if errors.Is(err, store.ErrNotFound) {
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQPoison, registrationID: sm.RegistrationID, flow: sm.Flow,
			reason: "step message for a registration that has no flow"})
	}
	if err != nil {
		return fmt.Errorf("read flow: %w", err)
	}
	data, err := decodeFlowData(f.Data)
	if err != nil {
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQInternal, registrationID: f.RegistrationID, flow: f.Flow, tenant: f.Tenant, reason: err.Error()})
	}
	resuming := f.Status == store.StatusSuspended && msg.UUID != data.DeadLetterMsgID
	if f.Seq != sm.Seq || f.Step != s.Name || (f.Status != store.StatusRunning && !resuming) {
		log.Debug("stale or duplicate step message acknowledged", "flowSeq", f.Seq, "flowStep", f.Step, "status", f.Status)
		rt.Metrics.stale(s.Name)
		return nil
	}
	if resuming {
		log.Info("resuming a suspended flow from a replayed step message")
	}

	started := rt.now()
	var tr Transition
	run := &Run{Flow: f, Data: data, Now: started, box: rt.Box}
	attempts, runErr := rt.Retry.Do(ctx, func(ctx context.Context) error {
		var err error
		tr, err = s.Run(ctx, run)
		return err
	}, func(err error, delay time.Duration) {
		rt.Metrics.retry(s.Name)
		log.Warn("transient vendor failure; retrying", "err", err, "delay", delay)
	})
	rec := StepRecord{Step: s.Name, Seq: f.Seq, StartedAt: started, FinishedAt: rt.now(), Attempts: attempts.Count}

	switch {
	case runErr == nil:
		if !tr.valid() || tr.Stay {
			return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQInternal, registrationID: f.RegistrationID, flow: f.Flow, tenant: f.Tenant,
				reason: "step returned neither a next step nor a terminal event (a bug)"})
		}
		rec.Outcome = tr.Outcome
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: redelivered later
	case errors.Is(runErr, guard.ErrOpen):
		if rt.park(msg, runErr, log) {
			return nil
		}
		rec.Outcome, rec.Error = "dead_lettered", runErr.Error()
		log.Error("vendor circuit open past the parking limit; dead-lettering the step", "err", runErr)
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQVendorUnavailable,
			reason: fmt.Sprintf("parked for more than %s while the vendor's circuit stayed open: %v", rt.maxPark(), runErr), attempts: attempts,
			registrationID: f.RegistrationID, flow: f.Flow, tenant: f.Tenant, suspend: &f, record: &rec})
	case errors.Is(runErr, ErrBudgetExhausted):
		rec.Outcome, rec.Error = "dead_lettered", runErr.Error()
		log.Error("retry budget exhausted; dead-lettering the step", "err", runErr, "attempts", attempts.Count)
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQVendorUnavailable, reason: runErr.Error(), attempts: attempts,
			registrationID: f.RegistrationID, flow: f.Flow, tenant: f.Tenant, suspend: &f, record: &rec})
	case vendors.IsPermanent(runErr):
		info := permanentFailure(runErr, f.Tenant)
		tr = Transition{Outcome: info.Code, Terminal: &events.Failed{Error: info}}
		rec.Outcome, rec.Error = tr.Outcome, runErr.Error()
	default:
		log.Error("step failed unexpectedly; dead-lettering", "err", runErr)
		return rt.deadLetter(ctx, msg, deadLetter{handler: handler, code: DLQInternal, reason: runErr.Error(), attempts: attempts,
			registrationID: f.RegistrationID, flow: f.Flow, tenant: f.Tenant, suspend: &f, record: &rec})
	}

	err = rt.commit(ctx, f, data, &rec, tr, nil)
	if errors.Is(err, errStale) {
		log.Info("flow moved on while the step ran; result dropped")
		rt.Metrics.stale(s.Name)
		return nil
	}
	if err != nil {
		return err
	}
	log.Debug("step done", "outcome", tr.Outcome, "next", tr.Next, "attempts", attempts.Count)
	return nil
}

// ledgerClaim is a command claimed in the ledger in the same transaction
// as a commit, so a redelivered command is recognised after the commit.
type ledgerClaim struct {
	registrationID, commandType, msgID string
}

// errDuplicate: the ledger already had the claim.
var errDuplicate = errors.New("command already processed")

// commit writes a transition — flow state, history, events, the next step's
// message — in one transaction, with claim (if any) in the ledger. It
// returns errStale when the flow changed since it was read and errDuplicate
// when the claim was taken.
func (rt *Runtime) commit(ctx context.Context, read store.Flow, data *flowData, rec *StepRecord, tr Transition, claim *ledgerClaim) error {
	now := rt.now()
	for name, v := range tr.Vars {
		if err := data.setVar(name, v); err != nil {
			return err
		}
	}
	if rec != nil {
		data.Steps = append(data.Steps, *rec)
	}
	f := read
	all := tr.Events
	switch {
	case tr.Terminal != nil:
		all = append(all[:len(all):len(all)], tr.Terminal)
	case tr.Wait != nil:
		all = append(all[:len(all):len(all)], &events.OTPRequested{Channel: tr.Wait.Channel,
			MaskedDestination: tr.Wait.MaskedDestination, ExpiresAt: tr.Wait.ExpiresAt.UTC(), AttemptsLeft: tr.Wait.AttemptsLeft})
	}
	var msgs []outbox.Message
	for i, e := range all {
		id := deterministicID(f.RegistrationID, strconv.FormatInt(read.Seq, 10), strconv.FormatInt(read.Version, 10), strconv.Itoa(i))
		m, err := eventMessage(e, id, f.RegistrationID, f.Flow, now)
		if err != nil {
			return err
		}
		data.Events = append(data.Events, EmittedEvent{ID: m.ID, Type: e.EventType(), At: now})
		msgs = append(msgs, m)
	}
	switch {
	case tr.Terminal != nil:
		f.Seq = read.Seq + 1
		f.Step = ""
		f.Status = store.StatusCompleted
		f.WaitingFor, f.Deadline = "", time.Time{}
		data.OTP = nil
		data.Sealed = nil // the flow's secrets end with it
		if fe, ok := tr.Terminal.(*events.Failed); ok {
			f.Status = store.StatusFailed
			step := ""
			if rec != nil {
				step = rec.Step
			}
			data.LastError = &FlowError{At: now, Step: step, Code: fe.Error.Code, Message: fe.Error.Message}
		}
	case tr.Stay:
		// Still waiting, at the same step and sequence.
	case tr.Wait != nil:
		f.Seq = read.Seq + 1
		f.Step = tr.Next
		f.Status = store.StatusWaiting
		f.WaitingFor, f.Deadline = WaitingForOTP, tr.Wait.ExpiresAt.UTC()
		resends, sent := 0, now
		if data.OTP != nil {
			resends = data.OTP.Resends
		}
		data.OTP = &OTPState{Step: tr.Next, Channel: tr.Wait.Channel, MaskedDestination: tr.Wait.MaskedDestination,
			ExpiresAt: tr.Wait.ExpiresAt.UTC(), AttemptsLeft: tr.Wait.AttemptsLeft, Resends: resends, SentAt: sent}
	default:
		f.Seq = read.Seq + 1
		f.Step = tr.Next
		f.Status = store.StatusRunning
		f.WaitingFor, f.Deadline = "", time.Time{}
		data.OTP = nil
		m, err := stepMessageFor(f)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	b, err := data.encode()
	if err != nil {
		return err
	}
	f.Data = b
	err = rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if claim != nil {
			fresh, err := tx.ClaimCommand(ctx, claim.registrationID, claim.commandType, claim.msgID)
			if err != nil {
				return err
			}
			if !fresh {
				return errDuplicate
			}
		}
		if err := tx.UpdateFlow(ctx, f); err != nil {
			return err
		}
		return tx.Enqueue(ctx, msgs...)
	})
	if errors.Is(err, store.ErrConflict) {
		return errStale
	}
	if errors.Is(err, errDuplicate) {
		return err
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", f.RegistrationID, err)
	}
	rt.notify()
	if tr.Terminal != nil {
		rt.Metrics.ended(f.Flow, string(f.Status), failedCode(tr.Terminal))
	}
	rt.countOTP(read, f.Flow, all, tr.Terminal)
	return nil
}

// countOTP counts the one-time code events of a commit.
func (rt *Runtime) countOTP(read store.Flow, flow string, emitted []events.Event, terminal events.Event) {
	for _, e := range emitted {
		switch e.(type) {
		case *events.OTPRequested:
			rt.Metrics.otp(flow, "requested")
		case *events.OTPRejected:
			rt.Metrics.otp(flow, "rejected")
		}
	}
	switch failedCode(terminal) {
	case events.CodeOTPExpired:
		rt.Metrics.otp(flow, "expired")
	case events.CodeOTPAttemptsExceeded:
		rt.Metrics.otp(flow, "attempts_exceeded")
	case events.CodeCancelled:
		if read.WaitingFor == WaitingForOTP {
			rt.Metrics.otp(flow, "cancelled")
		}
	}
}

// eventMessage stamps e and turns it into an outbox message.
func eventMessage(e events.Event, id, registrationID, flow string, at time.Time) (outbox.Message, error) {
	subject := events.Stamp(e, id, registrationID, flow, at)
	b, err := json.Marshal(e)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("encode event %s: %w", e.EventType(), err)
	}
	return outbox.Message{
		ID:      id,
		Subject: subject,
		Key:     registrationID,
		Headers: map[string]string{"Content-Type": "application/json"},
		Payload: b,
	}, nil
}

// stepMessageFor is the message that runs f's current step.
func stepMessageFor(f store.Flow) (outbox.Message, error) {
	b, err := json.Marshal(stepMessage{RegistrationID: f.RegistrationID, Flow: f.Flow, Step: f.Step, Seq: f.Seq})
	if err != nil {
		return outbox.Message{}, fmt.Errorf("encode step message: %w", err)
	}
	return outbox.Message{
		ID:      "step:" + f.RegistrationID + ":" + strconv.FormatInt(f.Seq, 10),
		Subject: StepSubject(f.Step),
		Key:     f.RegistrationID,
		Headers: map[string]string{HeaderFlow: f.Flow, HeaderRegistrationID: f.RegistrationID},
		Payload: b,
	}, nil
}

// permanentFailure is the failed event's error for a permanent vendor
// refusal no step handled itself: each vendor's documented errors map to
// the contract's stable codes, anything else is vendor_rejected.
func permanentFailure(err error, tenant string) events.ErrorInfo {
	var ve *vendors.Error
	if errors.As(err, &ve) && ve.Vendor == resamania.Vendor {
		return resamaniaFailure(err, tenant)
	}
	if errors.As(err, &ve) && ve.Vendor == "engage" {
		return engageFailure(err, tenant)
	}
	if errors.As(err, &ve) && ve.Vendor == events.VendorCloudSuite {
		return cloudsuiteFailure(err, tenant)
	}
	return vendorErrorInfo(events.CodeVendorRejected, err)
}

// vendorErrorInfo describes a vendor error in a failed event. It keeps the
// vendor's status and code; the message comes from the vendor's reply,
// never from the request, so it holds no secret.
func vendorErrorInfo(code string, err error) events.ErrorInfo {
	info := events.ErrorInfo{Code: code, Message: err.Error()}
	var ve *vendors.Error
	if errors.As(err, &ve) {
		info.Vendor = ve.Vendor
		info.VendorStatus = ve.Status
		info.VendorCode = ve.Code
		info.Message = ve.Error()
		for _, f := range ve.Fields {
			info.Fields = append(info.Fields, events.FieldError{Field: f.Field, Message: f.Message})
		}
	}
	return info
}

// deadLetter describes a message to dead-letter.
type deadLetter struct {
	handler        string
	code           string
	reason         string
	attempts       Attempts
	registrationID string
	flow           string
	tenant         string
	// suspend, when set, is the flow as read: it is marked suspended at
	// its current step in the same transaction, and record is appended to
	// its history.
	suspend *store.Flow
	record  *StepRecord
}

// deadLetterMessage is the outbox message that dead-letters msg.
func deadLetterMessage(msg *message.Message, dl deadLetter, now time.Time) outbox.Message {
	if dl.attempts.Count == 0 {
		dl.attempts.Count = 1
	}
	if dl.attempts.FirstFailure.IsZero() {
		// The failure was met at once (a refused call, an unreadable
		// message): now.
		dl.attempts.FirstFailure = now
	}
	if dl.attempts.LastFailure.IsZero() {
		dl.attempts.LastFailure = now
	}
	subject := msg.Metadata.Get(transport.MetaSubject)
	headers := make(map[string]string)
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, "registrar.") || strings.HasPrefix(k, "_watermill") || k == "Nats-Msg-Id" {
			continue
		}
		headers[k] = v
	}
	headers[HeaderOriginalSubject] = subject
	headers[HeaderOriginalMsgID] = msg.UUID
	headers[HeaderReason] = truncate(dl.reason, 2048)
	headers[HeaderHandler] = dl.handler
	headers[HeaderErrorCode] = dl.code
	headers[HeaderAttempts] = strconv.Itoa(dl.attempts.Count)
	headers[HeaderDeliveries] = msg.Metadata.Get(transport.MetaDelivered)
	headers[HeaderFirstFailure] = dl.attempts.FirstFailure.UTC().Format(time.RFC3339Nano)
	headers[HeaderLastFailure] = dl.attempts.LastFailure.UTC().Format(time.RFC3339Nano)
	headers[HeaderDeadLetteredAt] = now.Format(time.RFC3339Nano)
	if dl.flow != "" {
		headers[HeaderFlow] = dl.flow
	}
	if dl.registrationID != "" {
		headers[HeaderRegistrationID] = dl.registrationID
	}
	if dl.tenant != "" {
		headers[HeaderTenant] = dl.tenant
	}
	key := dl.registrationID
	if key == "" {
		key = msg.UUID
	}
	out := outbox.Message{
		ID:      "dlq:" + msg.UUID,
		Subject: events.DeadLetterSubjectPrefix + dl.handler,
		Key:     key,
		Headers: headers,
		// Secrets in a command body (passwords, codes) are replaced by a
		// marker: a dead letter never carries them.
		Payload: events.Redact(subject, msg.Payload),
	}
	return out
}

// deadLetter writes msg to the dead-letter stream through the outbox (and
// suspends the flow, if given) in one transaction. The message is then
// acknowledged: it is never dropped without a dead letter.
func (rt *Runtime) deadLetter(ctx context.Context, msg *message.Message, dl deadLetter) error {
	now := rt.now()
	out := deadLetterMessage(msg, dl, now)

	err := rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if dl.suspend != nil {
			f := *dl.suspend
			data, err := decodeFlowData(f.Data)
			if err != nil {
				return err
			}
			if dl.record != nil {
				data.Steps = append(data.Steps, *dl.record)
			}
			data.LastError = &FlowError{At: now, Step: f.Step, Code: dl.code, Message: truncate(dl.reason, 2048)}
			data.DeadLetterMsgID = msg.UUID
			if f.Data, err = data.encode(); err != nil {
				return err
			}
			f.Status = store.StatusSuspended
			if err := tx.UpdateFlow(ctx, f); err != nil {
				return err
			}
		}
		return tx.Enqueue(ctx, out)
	})
	if errors.Is(err, store.ErrConflict) {
		// The flow moved on meanwhile (a duplicate delivery won): nothing
		// of this message is left to do.
		return nil
	}
	if err != nil {
		return fmt.Errorf("write dead letter: %w", err)
	}
	rt.notify()
	rt.Metrics.deadLettered(orUnknown(dl.flow), dl.handler, dl.code)
	rt.log().Warn("message dead-lettered", "handler", dl.handler, "code", dl.code, "registrationId", dl.registrationID,
		"flow", dl.flow, "attempts", dl.attempts.Count, "reason", truncate(dl.reason, 512))
	return nil
}

// recoverPanic turns a handler panic into a dead letter: a panic is a bug
// that would repeat on every redelivery.
func (rt *Runtime) recoverPanic(msg *message.Message, handler string, errp *error) {
	r := recover()
	if r == nil {
		return
	}
	rt.log().Error("handler panicked", "handler", handler, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*errp = rt.deadLetter(msg.Context(), msg, deadLetter{handler: handler, code: DLQPanic, reason: fmt.Sprintf("panic: %v", r),
		registrationID: msg.Metadata.Get(HeaderRegistrationID), flow: msg.Metadata.Get(HeaderFlow)})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
