package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/transport"
)

// IntakeName is the intake handler's name and durable consumer.
const IntakeName = "intake"

// Intake validates registration commands and starts flows. An invalid
// command becomes a rejected event naming its fields; a valid one that
// starts a flow creates the flow and sends its first step, once per
// (registrationId, command type) — a duplicate changes nothing.
type Intake struct {
	rt      *Runtime
	tenants events.TenantChecker
	starts  map[string]string
}

// NewIntake returns the intake handler. starts maps each command type that
// starts a flow to the flow's first step; a valid command of another
// starting type is rejected as not available.
func NewIntake(rt *Runtime, tenants events.TenantChecker, starts map[string]string) *Intake {
	return &Intake{rt: rt, tenants: tenants, starts: starts}
}

// Handle is the Watermill handler.
func (in *Intake) Handle(msg *message.Message) (err error) {
	defer in.rt.recoverPanic(msg, IntakeName, &err)
	ctx := msg.Context()
	subject := msg.Metadata.Get(transport.MetaSubject)
	cmdType := strings.TrimPrefix(subject, events.CommandSubjectPrefix)

	if IsSteering(cmdType) {
		// The OTP handler has its own consumer for these, and rejects
		// them when they are invalid.
		return nil
	}
	in.rt.countReplay(msg, IntakeName)
	cmd, err := events.DecodeCommand(subject, msg.Payload, in.tenants)
	var invalid *events.InvalidCommandError
	if errors.As(err, &invalid) {
		return in.rt.reject(ctx, msg, IntakeName, invalid, true)
	}
	if err != nil {
		return in.rt.deadLetter(ctx, msg, deadLetter{handler: IntakeName, code: DLQInternal, reason: err.Error()})
	}

	step, ok := in.starts[cmd.CommandType()]
	if !ok {
		return in.rt.reject(ctx, msg, IntakeName, &events.InvalidCommandError{CommandType: cmd.CommandType(), RegistrationID: cmd.RegistrationID(),
			Errors: []events.FieldError{{Field: "subject", Message: "the " + cmd.CommandType() + " flow is not available in this version of registrar"}}}, true)
	}
	return in.start(ctx, msg, cmd, step, cmdType)
}

func (in *Intake) start(ctx context.Context, msg *message.Message, cmd events.Command, step, cmdType string) error {
	rt := in.rt
	id := cmd.RegistrationID()
	data := &flowData{Command: append([]byte(nil), msg.Payload...)}
	if signup, ok := cmd.(*events.MartaSignup); ok {
		if signup.Password.Reveal() == secret.Marker {
			// A dead letter's body carries the marker, never the password:
			// a replayed sign-up command cannot start a flow with it.
			return rt.reject(ctx, msg, IntakeName, &events.InvalidCommandError{CommandType: cmd.CommandType(), RegistrationID: id,
				Errors: []events.FieldError{{Field: "password", Message: "is the redaction marker of a dead letter: publish the command again with the password"}}}, true)
		}
		// The password is needed after the code: kept sealed, never in
		// the stored command.
		if rt.Box == nil {
			return errors.New("intake: no secret box to keep the password of a sign-up")
		}
		sealed, err := rt.Box.Seal(signup.Password)
		if err != nil {
			return err
		}
		data.Sealed = map[string]string{"password": sealed}
		data.Command = events.Redact(msg.Metadata.Get(transport.MetaSubject), msg.Payload)
	}
	b, err := data.encode()
	if err != nil {
		return err
	}
	f := store.Flow{
		RegistrationID: id,
		Flow:           cmd.CommandType(),
		Tenant:         cmd.TenantName(),
		Status:         store.StatusRunning,
		Step:           step,
		Seq:            1,
		Data:           b,
	}
	first, err := stepMessageFor(f)
	if err != nil {
		return err
	}
	result := "started"
	err = rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		fresh, err := tx.ClaimCommand(ctx, id, cmd.CommandType(), msg.UUID)
		if err != nil {
			return err
		}
		if !fresh {
			result = "duplicate"
			return nil
		}
		err = tx.CreateFlow(ctx, f)
		if errors.Is(err, store.ErrExists) {
			existing, err := tx.Flow(ctx, id)
			if err != nil {
				return err
			}
			if act, ok := cmd.(*events.CloudSuiteActivate); ok && existing.Flow == FlowCloudSuiteRegistration {
				// The activation of a user the poller announced continues
				// the user's registration flow.
				next, refusal, err := continueCloudSuiteRegistration(existing, act, msg.Payload)
				if err != nil {
					return err
				}
				if refusal != nil {
					return &refusedError{*refusal}
				}
				result, f = "continued", next
				if err := tx.UpdateFlow(ctx, next); err != nil {
					return err
				}
				m, err := stepMessageFor(next)
				if err != nil {
					return err
				}
				return tx.Enqueue(ctx, m)
			}
			// Another command type already started a flow with this id.
			return &refusedError{events.FieldError{Field: "registrationId", Message: fmt.Sprintf("already identifies a %s flow", existing.Flow)}}
		}
		if err != nil {
			return err
		}
		return tx.Enqueue(ctx, first)
	})
	var refused *refusedError
	if errors.As(err, &refused) {
		// Rolled back: the ledger keeps no claim, so a corrected command
		// with the same registrationId is not taken for a duplicate.
		return rt.reject(ctx, msg, IntakeName, &events.InvalidCommandError{CommandType: cmd.CommandType(), RegistrationID: id,
			Errors: []events.FieldError{refused.why}}, true)
	}
	if err != nil {
		return fmt.Errorf("start flow: %w", err)
	}
	rt.Metrics.command(cmdType, result)
	switch result {
	case "started":
		rt.Metrics.flowStarted(f.Flow)
		rt.notify()
		rt.log().Info("flow started", "registrationId", id, "flow", f.Flow, "tenant", f.Tenant, "step", step)
	case "continued":
		rt.notify()
		rt.log().Info("flow continued", "registrationId", id, "flow", f.Flow, "tenant", f.Tenant, "step", f.Step, "command", cmd.CommandType())
	default:
		rt.log().Info("duplicate command acknowledged without effect", "registrationId", id, "flow", f.Flow, "msgId", msg.UUID)
	}
	return nil
}

// IsSteering reports whether a command type steers a running flow
// (otp.submit, otp.resend, cancel) rather than starting one.
func IsSteering(cmdType string) bool {
	return cmdType == events.CmdOTPSubmit || cmdType == events.CmdOTPResend || cmdType == events.CmdCancel
}

// reject emits a rejected event for an invalid command. It is acknowledged
// and never retried.
func (rt *Runtime) reject(ctx context.Context, msg *message.Message, handler string, invalid *events.InvalidCommandError, keep bool) error {
	now := rt.now()
	m, err := rejectedMessage(msg, invalid, now)
	if err != nil {
		return err
	}
	cmdType := invalid.CommandType
	if cmdType == "" {
		cmdType = "unknown"
	}
	fields := make([]string, len(invalid.Errors))
	reasons := make([]string, len(invalid.Errors))
	for i, e := range invalid.Errors {
		fields[i] = e.Field
		reasons[i] = e.Field + ": " + e.Message
	}
	msgs := []outbox.Message{m}
	if keep {
		// The command is kept as a dead letter, so that an operator can
		// fix it (registrar dlq edit) and replay it: nothing is lost.
		msgs = append(msgs, deadLetterMessage(msg, deadLetter{handler: handler, code: DLQRejected, flow: cmdType,
			registrationID: invalid.RegistrationID, reason: "rejected: " + strings.Join(reasons, "; ")}, now))
	}
	err = rt.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Enqueue(ctx, msgs...) })
	if errors.Is(err, store.ErrExists) {
		// A redelivery of a command whose rejection is already written.
		return nil
	}
	if err != nil {
		return fmt.Errorf("reject command: %w", err)
	}
	rt.notify()
	rt.Metrics.command(cmdType, "rejected")
	if keep {
		rt.Metrics.deadLettered(cmdType, handler, DLQRejected)
	}
	rt.log().Info("command rejected", "registrationId", invalid.RegistrationID, "command", cmdType, "fields", fields, "keptAsDeadLetter", keep)
	return nil
}

// rejectedMessage builds the rejected event of a command. Its id derives
// from the command message's id, so a redelivered command is rejected once.
func rejectedMessage(msg *message.Message, invalid *events.InvalidCommandError, now time.Time) (outbox.Message, error) {
	e := events.NewRejected(invalid)
	m, err := eventMessage(e, deterministicID("rejected", msg.UUID), invalid.RegistrationID, invalid.CommandType, now)
	if m.Key == "" {
		m.Key = msg.UUID // no usable registrationId: order it on its own
	}
	if m.Headers != nil {
		// Lets a publisher match the rejection of a command whose body
		// could not be read to the message it published.
		m.Headers[HeaderCommandMsgID] = msg.UUID
	}
	return m, err
}

// refusedError rolls back a start the intake refuses.
type refusedError struct{ why events.FieldError }

func (e *refusedError) Error() string { return e.why.Field + " " + e.why.Message }
