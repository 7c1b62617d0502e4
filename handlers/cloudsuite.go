package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/store"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
)

// CloudSuite step and flow names (step names are durable consumer names:
// never rename).
const (
	StepCloudSuiteActivate = "cloudsuite.activate"
	// FlowCloudSuiteRegistration is the flow the poller starts for each new
	// user (registrationId cloudsuite:<origin>:<userKey>): it announces the
	// user, then waits for a cloudsuite.activate command with the same
	// registrationId.
	FlowCloudSuiteRegistration = "cloudsuite.registration"
	// WaitingForActivation is store.Flow.WaitingFor of a registration flow
	// waiting for its user's review.
	WaitingForActivation = "activation"
)

// CloudSuiteAPI is what the activation needs from a CloudSuite client.
type CloudSuiteAPI interface {
	Origin() string
	PutCustomer(ctx context.Context, key string, body json.RawMessage) error
	UpdateUser(ctx context.Context, key string, fields map[string]any) error
}

// CloudSuiteClients returns the CloudSuite client of a tenant.
type CloudSuiteClients func(tenant string) (CloudSuiteAPI, error)

// CloudSuiteActivation links a reviewed user to a customer and triggers
// the activation e-mail (seed 004): the customer is created or replaced
// first when the command carries one (PUT, idempotent), then one PATCH sets
// authorised_customers with registration "new" and active false.
type CloudSuiteActivation struct {
	clients CloudSuiteClients
}

// NewCloudSuiteActivation returns the activation step.
func NewCloudSuiteActivation(clients CloudSuiteClients) *CloudSuiteActivation {
	return &CloudSuiteActivation{clients: clients}
}

// Step returns the step.
func (h *CloudSuiteActivation) Step() Step {
	return Step{Name: StepCloudSuiteActivate, Run: h.activate}
}

func (h *CloudSuiteActivation) activate(ctx context.Context, r *Run) (Transition, error) {
	var cmd events.CloudSuiteActivate
	if err := r.Command(&cmd); err != nil {
		return Transition{}, err
	}
	api, err := h.clients(r.Flow.Tenant)
	if err != nil {
		return Transition{}, fmt.Errorf("cloudsuite client of tenant %s: %w", r.Flow.Tenant, err)
	}
	created := len(cmd.Customer) > 0
	if created {
		// PUT creates or replaces: running it again after a crash or a
		// failed PATCH changes nothing more.
		if err := api.PutCustomer(ctx, cmd.CustomerKey, cmd.Customer); err != nil {
			return Transition{}, err
		}
	}
	// One call links the customer and triggers the activation e-mail.
	if err := api.UpdateUser(ctx, cmd.UserKey, map[string]any{
		"authorised_customers": []string{cmd.CustomerKey},
		"registration":         "new",
		"active":               false,
	}); err != nil {
		return Transition{}, err
	}
	origin := api.Origin()
	return Transition{Outcome: "activated",
		Events: []events.Event{&events.CloudSuiteUserActivated{Origin: origin, UserKey: cmd.UserKey, CustomerKey: cmd.CustomerKey, CustomerCreated: created}},
		Terminal: &events.Completed{Result: events.CloudSuiteResult{Origin: origin, UserKey: cmd.UserKey,
			CustomerKey: cmd.CustomerKey, CustomerCreated: created}}}, nil
}

// cloudsuiteFailure is the failed event's error for a permanent CloudSuite
// refusal, with a message that says what to check.
func cloudsuiteFailure(err error, tenant string) events.ErrorInfo {
	info := vendorErrorInfo(events.CodeVendorRejected, err)
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		return info
	}
	switch {
	case ve.Op == cloudsuite.OpToken:
		info.Message = fmt.Sprintf("CloudSuite refused the client credentials (%s): check tenants.%s.cloudsuite.clientId, clientSecret and tokenURL", ve.Code, tenant)
	case ve.Status == http.StatusUnauthorized:
		info.Message = fmt.Sprintf("CloudSuite refused the access token (401) twice: check tenants.%s.cloudsuite.tokenURL and that the client may use the API", tenant)
	case ve.Status == http.StatusForbidden:
		info.Message = fmt.Sprintf("CloudSuite denied the client access (403): check the permissions of tenants.%s.cloudsuite.clientId", tenant)
	case ve.Status == http.StatusNotFound && ve.Op == cloudsuite.OpUpdateUser:
		info.Message = fmt.Sprintf("CloudSuite has no such user in the origin of tenants.%s.cloudsuite.origin (404): check userKey", tenant)
	case ve.Status == http.StatusNotFound:
		info.Message = fmt.Sprintf("CloudSuite answered 404 to %s: check tenants.%s.cloudsuite.baseURL and origin", ve.Op, tenant)
	case ve.Status == http.StatusBadRequest && ve.Op == cloudsuite.OpPutCustomer:
		info.Message = "CloudSuite refused the customer object (400): see fields"
	}
	return info
}

// continueCloudSuiteRegistration is the registration flow f moved on to
// the activation cmd (whose body is payload), or the field error that
// refuses it: the flow must wait for its activation, and the command name
// its tenant and user.
func continueCloudSuiteRegistration(f store.Flow, cmd *events.CloudSuiteActivate, payload []byte) (store.Flow, *events.FieldError, error) {
	data, err := decodeFlowData(f.Data)
	if err != nil {
		return store.Flow{}, nil, err
	}
	var d cloudsuiteDiscovery
	if err := json.Unmarshal(data.Command, &d); err != nil {
		return store.Flow{}, nil, fmt.Errorf("decode the discovery of %s: %w", f.RegistrationID, err)
	}
	switch {
	case f.Status != store.StatusWaiting || f.WaitingFor != WaitingForActivation:
		return store.Flow{}, &events.FieldError{Field: "registrationId",
			Message: fmt.Sprintf("identifies a %s flow that is %s, not waiting for its activation", f.Flow, f.Status)}, nil
	case cmd.TenantName() != f.Tenant:
		return store.Flow{}, &events.FieldError{Field: "tenant",
			Message: fmt.Sprintf("must be %s, the tenant whose CloudSuite origin listed this user", f.Tenant)}, nil
	case cmd.UserKey != d.UserKey:
		return store.Flow{}, &events.FieldError{Field: "userKey",
			Message: "must be the key of the user this registrationId names (" + d.UserKey + ")"}, nil
	}
	data.Command = append(json.RawMessage(nil), payload...)
	b, err := data.encode()
	if err != nil {
		return store.Flow{}, nil, err
	}
	next := f
	next.Data = b
	next.Status = store.StatusRunning
	next.Step = StepCloudSuiteActivate
	next.Seq = f.Seq + 1
	next.WaitingFor, next.Deadline = "", time.Time{}
	return next, nil, nil
}
