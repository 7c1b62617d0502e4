package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/guard"
)

// OTPName is the OTP handler's name and durable consumer. It consumes the
// steering commands (otp.submit, otp.resend, cancel) of every flow.
const OTPName = "otp"

// StepOTPExpire is the step a waiting flow moves to when its code expires.
const StepOTPExpire = "otp.expire"

// ErrWrongCode is returned (wrapped) by OTPVendor.Verify when the vendor
// refused the code itself; the person may try again.
var ErrWrongCode = errors.New("wrong one-time code")

// OTPVendor is what a flow that waits for a code does at its vendor. The
// OTP handler finds it by the waiting step's name. Errors are classified
// like a step's: transient ones are retried, permanent ones end the flow.
type OTPVendor interface {
	// Verify submits the code: the transition to take when it is right,
	// ErrWrongCode when the vendor refused it.
	Verify(ctx context.Context, r *Run, code string) (Transition, error)
	// Resend asks the vendor for a new code; the transition has Wait set.
	Resend(ctx context.Context, r *Run) (Transition, error)
	// Cancel withdraws the vendor-side request (on cancel, expiry or too
	// many wrong codes). A request the vendor no longer knows is not an
	// error worth failing for: implementations may return nil then.
	Cancel(ctx context.Context, r *Run) error
}

// OTPConfig bounds the codes of every flow.
type OTPConfig struct {
	TTL            time.Duration // how long a code is waited for; default 10m
	Attempts       int           // wrong codes allowed per code sent; default 3
	MaxResends     int           // new codes per flow; default 3
	ResendInterval time.Duration // between two codes; default 30s
}

// WithDefaults fills the zero fields.
func (c OTPConfig) WithDefaults() OTPConfig {
	if c.TTL <= 0 {
		c.TTL = 10 * time.Minute
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.MaxResends <= 0 {
		c.MaxResends = 3
	}
	if c.ResendInterval <= 0 {
		c.ResendInterval = 30 * time.Second
	}
	return c
}

// Wait is the OTPWait of a code just sent on channel to destination.
func (c OTPConfig) Wait(now time.Time, channel, destination string) *OTPWait {
	c = c.WithDefaults()
	return &OTPWait{Channel: channel, MaskedDestination: events.MaskDestination(destination), ExpiresAt: now.Add(c.TTL), AttemptsLeft: c.Attempts}
}

// OTP is the handler shared by every flow that waits for a one-time code:
// it checks submitted codes with the flow's vendor (otp.rejected with the
// attempts left, or the flow goes on), asks for new codes, cancels waiting
// flows, and ends flows whose code expired (step otp.expire). The code is
// passed to the vendor and nowhere else: not stored, logged, emitted or
// dead-lettered.
type OTP struct {
	rt      *Runtime
	tenants events.TenantChecker
	vendors map[string]OTPVendor
	cfg     OTPConfig
}

// NewOTP returns the OTP handler. vendors maps each waiting step to its
// flow's OTPVendor.
func NewOTP(rt *Runtime, tenants events.TenantChecker, vendors map[string]OTPVendor, cfg OTPConfig) *OTP {
	return &OTP{rt: rt, tenants: tenants, vendors: vendors, cfg: cfg.WithDefaults()}
}

// Config is the handler's OTP configuration.
func (o *OTP) Config() OTPConfig { return o.cfg }

// Handle is the Watermill handler of the steering commands.
func (o *OTP) Handle(msg *message.Message) (err error) {
	defer o.rt.recoverPanic(msg, OTPName, &err)
	o.rt.countReplay(msg, OTPName)
	ctx := msg.Context()
	rt := o.rt
	subject := msg.Metadata.Get(transport.MetaSubject)
	cmd, err := events.DecodeCommand(subject, msg.Payload, o.tenants)
	var invalid *events.InvalidCommandError
	if errors.As(err, &invalid) {
		return rt.reject(ctx, msg, OTPName, invalid, true)
	}
	if err != nil {
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQInternal, reason: err.Error()})
	}
	if !IsSteering(cmd.CommandType()) {
		return nil // the intake handles the others
	}
	id := cmd.RegistrationID()
	claim := &ledgerClaim{registrationID: id, commandType: cmd.CommandType() + "#" + msg.UUID, msgID: msg.UUID}
	if done, err := o.claimed(ctx, claim); err != nil {
		return err
	} else if done {
		rt.log().Debug("steering command already processed", "registrationId", id, "command", cmd.CommandType())
		return nil
	}
	rejectWhy := func(why string) error {
		return rt.reject(ctx, msg, OTPName, &events.InvalidCommandError{CommandType: cmd.CommandType(), RegistrationID: id,
			Errors: []events.FieldError{{Field: "registrationId", Message: why}}}, false)
	}

	f, err := rt.Store.Flow(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return rejectWhy("no flow has this registrationId")
	}
	if err != nil {
		return fmt.Errorf("read flow: %w", err)
	}
	data, err := decodeFlowData(f.Data)
	if err != nil {
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQInternal, registrationID: id, flow: f.Flow, tenant: f.Tenant, reason: err.Error()})
	}
	switch {
	case f.Status.Terminal():
		return rejectWhy(fmt.Sprintf("the %s flow has already ended (%s)", f.Flow, f.Status))
	case f.Status == store.StatusWaiting && f.WaitingFor == WaitingForActivation:
		c, ok := cmd.(*events.Cancel)
		if !ok {
			return rejectWhy(fmt.Sprintf("the %s flow waits for a cloudsuite.activate command, not for a code", f.Flow))
		}
		return o.cancelActivation(ctx, msg, f, data, c, claim, rejectWhy)
	case f.Status != store.StatusWaiting || f.WaitingFor != WaitingForOTP || data.OTP == nil:
		return rejectWhy(fmt.Sprintf("the %s flow is not waiting for a code", f.Flow))
	}
	vendor, ok := o.vendors[data.OTP.Step]
	if !ok {
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQInternal, registrationID: id, flow: f.Flow, tenant: f.Tenant,
			reason: "no OTP vendor for the waiting step " + data.OTP.Step})
	}
	now := rt.now()
	run := &Run{Flow: f, Data: data, Now: now, box: rt.Box}
	log := rt.log().With("registrationId", id, "flow", f.Flow, "step", data.OTP.Step, "command", cmd.CommandType())

	var tr Transition
	var op func(ctx context.Context) error
	outcome := ""
	switch c := cmd.(type) {
	case *events.OTPSubmit:
		if !now.Before(data.OTP.ExpiresAt) {
			return rejectWhy("the code has expired")
		}
		op = func(ctx context.Context) error {
			var err error
			tr, err = vendor.Verify(ctx, run, c.Code.Reveal())
			if errors.Is(err, ErrWrongCode) {
				tr, err = o.wrongCode(ctx, run, vendor)
			}
			return err
		}
		outcome = "code_submitted"
	case *events.OTPResend:
		if data.OTP.Resends >= o.cfg.MaxResends {
			return rejectWhy(fmt.Sprintf("at most %d new codes may be sent per flow", o.cfg.MaxResends))
		}
		if next := data.OTP.SentAt.Add(o.cfg.ResendInterval); now.Before(next) {
			return rejectWhy(fmt.Sprintf("a new code may be sent from %s (%s after the last one)", next.Format(time.RFC3339), o.cfg.ResendInterval))
		}
		op = func(ctx context.Context) error {
			var err error
			tr, err = vendor.Resend(ctx, run)
			return err
		}
		data.OTP.Resends++
		outcome = "code_resent"
	case *events.Cancel:
		op = func(ctx context.Context) error {
			if err := vendor.Cancel(ctx, run); err != nil && !vendors.IsPermanent(err) {
				return err
			}
			msg := "cancelled by a cancel command"
			if c.Reason != "" {
				msg += ": " + c.Reason
			}
			tr = Transition{Outcome: "cancelled", Terminal: &events.Failed{Error: events.ErrorInfo{Code: events.CodeCancelled, Message: msg}}}
			return nil
		}
		outcome = "cancelled"
	default:
		return nil
	}

	attempts, runErr := rt.Retry.Do(ctx, op, func(err error, delay time.Duration) {
		rt.Metrics.retry(OTPName)
		log.Warn("transient vendor failure; retrying", "err", err, "delay", delay)
	})
	rec := StepRecord{Step: data.OTP.Step, Seq: f.Seq, StartedAt: now, FinishedAt: rt.now(), Attempts: attempts.Count, Outcome: outcome}
	switch {
	case runErr == nil:
		if tr.Outcome != "" {
			rec.Outcome = tr.Outcome
		}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(runErr, guard.ErrOpen):
		if rt.park(msg, runErr, log) {
			return nil // the command comes back when the vendor may be up
		}
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQVendorUnavailable, attempts: attempts,
			reason:         fmt.Sprintf("parked for more than %s while the vendor's circuit stayed open: %v", rt.maxPark(), runErr),
			registrationID: id, flow: f.Flow, tenant: f.Tenant})
	case errors.Is(runErr, ErrBudgetExhausted):
		// The flow keeps waiting; replaying the dead letter submits again.
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQVendorUnavailable, reason: runErr.Error(), attempts: attempts,
			registrationID: id, flow: f.Flow, tenant: f.Tenant})
	case vendors.IsPermanent(runErr):
		info := permanentFailure(runErr, f.Tenant)
		tr = Transition{Outcome: info.Code, Terminal: &events.Failed{Error: info}}
		rec.Outcome, rec.Error = tr.Outcome, runErr.Error()
	default:
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQInternal, reason: runErr.Error(), attempts: attempts,
			registrationID: id, flow: f.Flow, tenant: f.Tenant})
	}
	if !tr.valid() {
		return rt.deadLetter(ctx, msg, deadLetter{handler: OTPName, code: DLQInternal, registrationID: id, flow: f.Flow, tenant: f.Tenant,
			reason: "the OTP vendor returned an invalid transition (a bug)"})
	}
	err = rt.commit(ctx, f, data, &rec, tr, claim)
	switch {
	case errors.Is(err, errStale):
		// Another steering command, or the expiry, won the race.
		return rejectWhy("the flow changed while the command was processed; send it again if it still applies")
	case errors.Is(err, errDuplicate):
		return nil
	case err != nil:
		return err
	}
	rt.Metrics.command(cmd.CommandType(), rec.Outcome)
	log.Info("steering command processed", "outcome", rec.Outcome)
	return nil
}

// cancelActivation ends a registration flow that waits for its activation:
// nothing was asked of the vendor, so nothing is cancelled there.
func (o *OTP) cancelActivation(ctx context.Context, msg *message.Message, f store.Flow, data *flowData, c *events.Cancel,
	claim *ledgerClaim, rejectWhy func(string) error) error {
	rt := o.rt
	now := rt.now()
	why := "cancelled by a cancel command"
	if c.Reason != "" {
		why += ": " + c.Reason
	}
	tr := Transition{Outcome: "cancelled", Terminal: &events.Failed{Error: events.ErrorInfo{Code: events.CodeCancelled, Message: why}}}
	rec := StepRecord{Step: f.Step, Seq: f.Seq, StartedAt: now, FinishedAt: now, Attempts: 1, Outcome: "cancelled"}
	switch err := rt.commit(ctx, f, data, &rec, tr, claim); {
	case errors.Is(err, errStale):
		return rejectWhy("the flow changed while the command was processed; send it again if it still applies")
	case errors.Is(err, errDuplicate):
		return nil
	case err != nil:
		return err
	}
	rt.Metrics.command(c.CommandType(), "cancelled")
	rt.log().Info("steering command processed", "registrationId", f.RegistrationID, "flow", f.Flow, "command", c.CommandType(), "outcome", "cancelled")
	return nil
}

// wrongCode is the transition after a refused code: otp.rejected while
// attempts are left, else the vendor request is cancelled and the flow
// fails.
func (o *OTP) wrongCode(ctx context.Context, r *Run, vendor OTPVendor) (Transition, error) {
	left := r.Data.OTP.AttemptsLeft - 1
	if left > 0 {
		r.Data.OTP.AttemptsLeft = left
		return Transition{Outcome: "code_rejected", Stay: true, Events: []events.Event{&events.OTPRejected{AttemptsLeft: left}}}, nil
	}
	if err := vendor.Cancel(ctx, r); err != nil && !vendors.IsPermanent(err) {
		return Transition{}, err
	}
	r.Data.OTP.AttemptsLeft = 0
	return Transition{Outcome: "attempts_exceeded", Events: []events.Event{&events.OTPRejected{AttemptsLeft: 0}},
		Terminal: &events.Failed{Error: events.ErrorInfo{Code: events.CodeOTPAttemptsExceeded,
			Message: fmt.Sprintf("%d wrong codes: the vendor request was cancelled", o.cfg.Attempts)}}}, nil
}

// claimed reports whether the ledger already holds the claim, without
// taking it (the commit takes it with the outcome).
func (o *OTP) claimed(ctx context.Context, c *ledgerClaim) (bool, error) {
	errPeek := errors.New("peek")
	done := false
	err := o.rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		fresh, err := tx.ClaimCommand(ctx, c.registrationID, c.commandType, c.msgID)
		if err != nil {
			return err
		}
		done = !fresh
		return errPeek // roll back: only a look
	})
	if err != nil && !errors.Is(err, errPeek) {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return done, nil
}

// ExpireStep is the step a flow whose code expired runs: it cancels the
// vendor request and fails the flow with otp_expired.
func (o *OTP) ExpireStep() Step {
	return Step{Name: StepOTPExpire, Run: func(ctx context.Context, r *Run) (Transition, error) {
		if r.Data.OTP != nil {
			if vendor, ok := o.vendors[r.Data.OTP.Step]; ok {
				if err := vendor.Cancel(ctx, r); err != nil && !vendors.IsPermanent(err) {
					return Transition{}, err
				}
			}
		}
		return Transition{Outcome: "expired", Terminal: &events.Failed{Error: events.ErrorInfo{Code: events.CodeOTPExpired,
			Message: "no right code was submitted before the code expired; the vendor request was cancelled"}}}, nil
	}}
}

// Deadlines moves waiting flows whose deadline passed to their expiry step.
// Deadlines live in the store, so they fire after a restart, and every
// instance may run one: the flow's version decides which one moves it.
type Deadlines struct {
	rt       *Runtime
	interval time.Duration
}

// NewDeadlines returns the deadline scheduler, polling every interval
// (default 1s).
func NewDeadlines(rt *Runtime, interval time.Duration) *Deadlines {
	if interval <= 0 {
		interval = time.Second
	}
	return &Deadlines{rt: rt, interval: interval}
}

// Run polls until ctx is done.
func (d *Deadlines) Run(ctx context.Context) error {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if _, err := d.Fire(ctx); err != nil && ctx.Err() == nil {
			d.rt.log().Warn("deadlines: fire failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Fire moves every due flow to its expiry step and returns how many it
// moved.
func (d *Deadlines) Fire(ctx context.Context) (int, error) {
	rt := d.rt
	due, err := rt.Store.DueFlows(ctx, rt.now(), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range due {
		if f.WaitingFor != WaitingForOTP {
			continue
		}
		next := f
		next.Status, next.Step, next.Seq = store.StatusRunning, StepOTPExpire, f.Seq+1
		next.WaitingFor, next.Deadline = "", time.Time{}
		m, err := stepMessageFor(next)
		if err != nil {
			return n, err
		}
		err = rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			if err := tx.UpdateFlow(ctx, next); err != nil {
				return err
			}
			return tx.Enqueue(ctx, m)
		})
		if errors.Is(err, store.ErrConflict) {
			continue // a code or a cancel came first, or another instance fired it
		}
		if err != nil {
			return n, err
		}
		n++
		rt.log().Info("code expired", "registrationId", f.RegistrationID, "flow", f.Flow)
	}
	if n > 0 {
		rt.notify()
	}
	return n, nil
}
