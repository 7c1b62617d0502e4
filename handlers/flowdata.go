package handlers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/events"
)

// StepSubjectPrefix prefixes the internal subjects that carry step messages.
const StepSubjectPrefix = "registrar.step."

// StepSubject is the subject the messages of the named step are sent on.
func StepSubject(step string) string { return StepSubjectPrefix + step }

// ConsumerName is the durable consumer (and Watermill handler) name of a
// step: the step name with dots replaced, since consumer names cannot hold
// dots. Never rename a step casually: the name is a durable consumer.
func ConsumerName(step string) string { return strings.ReplaceAll(step, ".", "-") }

// stepMessage is the body of a step message: it names the flow and the step
// sequence it was sent for. The flow's state lives in the store.
type stepMessage struct {
	RegistrationID string `json:"registrationId"`
	Flow           string `json:"flow"`
	Step           string `json:"step"`
	Seq            int64  `json:"seq"`
}

// flowData is the JSON the store keeps in store.Flow.Data.
type flowData struct {
	// Command is the body of the command that started the flow.
	Command json.RawMessage `json:"command"`
	// Vars are step results later steps read, by name.
	Vars map[string]json.RawMessage `json:"vars,omitempty"`
	// Steps is the flow's history, one record per step run.
	Steps []StepRecord `json:"steps"`
	// Events lists the events the flow emitted.
	Events []EmittedEvent `json:"events"`
	// LastError is the last failure the flow met (terminal or not).
	LastError *FlowError `json:"lastError,omitempty"`
	// Sealed holds the command's secrets (a password needed after a code),
	// encrypted with the runtime's Box; erased when the flow ends. Command
	// keeps the body with those fields redacted.
	Sealed map[string]string `json:"sealed,omitempty"`
	// OTP is the code a waiting flow waits for, while it waits.
	OTP *OTPState `json:"otp,omitempty"`
	// DeadLetterMsgID is the id of the message dead-lettered last: a
	// redelivery of that very message is acknowledged without effect, a
	// replay (a new id) resumes the flow.
	DeadLetterMsgID string `json:"deadLetterMsgId,omitempty"`
}

// WaitingForOTP is store.Flow.WaitingFor of a flow that waits for a code.
const WaitingForOTP = "otp"

// OTPState is the one-time code a flow waits for. The code itself is never
// stored: only the vendor knows it.
type OTPState struct {
	// Step is the waiting step: the key of the flow's OTPVendor.
	Step              string    `json:"step"`
	Channel           string    `json:"channel"`
	MaskedDestination string    `json:"maskedDestination"`
	ExpiresAt         time.Time `json:"expiresAt"`
	AttemptsLeft      int       `json:"attemptsLeft"`
	// Resends counts the new codes asked for; SentAt is when the last one
	// was sent.
	Resends int       `json:"resends"`
	SentAt  time.Time `json:"sentAt"`
}

// StepRecord is one step run, as shown by the status API.
type StepRecord struct {
	Step       string    `json:"step"`
	Seq        int64     `json:"seq"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Attempts   int       `json:"attempts"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error,omitempty"`
}

// EmittedEvent is an event a flow emitted.
type EmittedEvent struct {
	ID   string    `json:"eventId"`
	Type string    `json:"type"`
	At   time.Time `json:"occurredAt"`
}

// FlowError is the last error a flow met.
type FlowError struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
}

func decodeFlowData(b []byte) (*flowData, error) {
	var d flowData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode flow data: %w", err)
	}
	return &d, nil
}

func (d *flowData) encode() ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode flow data: %w", err)
	}
	return b, nil
}

// Var decodes the named step result into v; it reports whether it was set.
func (d *flowData) Var(name string, v any) (bool, error) {
	raw, ok := d.Vars[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode flow var %s: %w", name, err)
	}
	return true, nil
}

func (d *flowData) setVar(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode flow var %s: %w", name, err)
	}
	if d.Vars == nil {
		d.Vars = make(map[string]json.RawMessage)
	}
	d.Vars[name] = b
	return nil
}

// failedCode returns the failure code of a terminal event, or "".
func failedCode(e events.Event) string {
	if f, ok := e.(*events.Failed); ok {
		return f.Error.Code
	}
	return ""
}
