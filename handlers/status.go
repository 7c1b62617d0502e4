package handlers

import (
	"time"

	"github.com/registrar-dev/registrar/store"
)

// FlowStatus is a flow as the status API and `registrar status` show it.
// It never holds the command body (which may carry secrets).
type FlowStatus struct {
	RegistrationID string         `json:"registrationId"`
	Flow           string         `json:"flow"`
	Tenant         string         `json:"tenant"`
	Status         store.Status   `json:"status"`
	Step           string         `json:"step,omitempty"`
	WaitingFor     string         `json:"waitingFor,omitempty"`
	Deadline       *time.Time     `json:"deadline,omitempty"`
	CreatedAt      time.Time      `json:"createdAt"`
	UpdatedAt      time.Time      `json:"updatedAt"`
	Steps          []StepRecord   `json:"steps"`
	Events         []EmittedEvent `json:"events"`
	LastError      *FlowError     `json:"lastError,omitempty"`
}

// StatusOf describes a stored flow.
func StatusOf(f store.Flow) (FlowStatus, error) {
	d, err := decodeFlowData(f.Data)
	if err != nil {
		return FlowStatus{}, err
	}
	s := FlowStatus{
		RegistrationID: f.RegistrationID,
		Flow:           f.Flow,
		Tenant:         f.Tenant,
		Status:         f.Status,
		Step:           f.Step,
		WaitingFor:     f.WaitingFor,
		CreatedAt:      f.CreatedAt,
		UpdatedAt:      f.UpdatedAt,
		Steps:          d.Steps,
		Events:         d.Events,
		LastError:      d.LastError,
	}
	if !f.Deadline.IsZero() {
		dl := f.Deadline
		s.Deadline = &dl
	}
	if s.Steps == nil {
		s.Steps = []StepRecord{}
	}
	if s.Events == nil {
		s.Events = []EmittedEvent{}
	}
	return s, nil
}
