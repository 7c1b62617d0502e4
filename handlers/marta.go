package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
	"github.com/registrar-dev/registrar/vendors/marta"
)

// MARTA sign-up step names (durable consumer names: never rename).
// StepMartaRegister is a waiting step: the OTP handler runs it with
// MartaSignup as its OTPVendor.
const (
	StepMartaCheck    = "marta.check"
	StepMartaCode     = "marta.code"
	StepMartaRegister = "marta.register"
	StepMartaProfile  = "marta.profile"
)

const varMarta = "marta"

// martaState is what the sign-up steps learn along the way.
type martaState struct {
	Branch     string `json:"branch"`
	CustomerID string `json:"customerId,omitempty"`
	Card       string `json:"card,omitempty"`
	FidelyCode string `json:"fidelyCode,omitempty"`
}

// MartaAPI is what the sign-up needs from a MARTA client.
type MartaAPI interface {
	CheckCard(ctx context.Context, s marta.Session, card, email, mobile string) (marta.CheckResult, error)
	VerifyEmail(ctx context.Context, s marta.Session, email, mobile string) error
	RegisterWithCode(ctx context.Context, s marta.Session, in marta.Registration) (marta.Account, error)
	GenerateVerificationCode(ctx context.Context, s marta.Session, customerID, email, mobile string) error
	ChangeCredentialsWithCode(ctx context.Context, s marta.Session, customerID, username string, password, code secret.String) (marta.Account, error)
	DataFields(ctx context.Context, s marta.Session, username string, password secret.String) ([]marta.DataField, error)
	Customer(ctx context.Context, s marta.Session, username string, password secret.String) (marta.Customer, error)
	UpdateCustomer(ctx context.Context, s marta.Session, username string, password secret.String, fields map[string]any) error
}

// MartaClients returns the MARTA client of a tenant.
type MartaClients func(tenant string) (MartaAPI, error)

// MartaSignup is the loyalty sign-up of seed 001: check the card (new
// user, user with a card, registered), send a code, register (or change
// the card holder's credentials) with it, then fill in the profile against
// the campaign's mandatory fields.
type MartaSignup struct {
	clients MartaClients
	otp     OTPConfig
}

// NewMartaSignup returns the sign-up steps.
func NewMartaSignup(clients MartaClients, otp OTPConfig) *MartaSignup {
	return &MartaSignup{clients: clients, otp: otp.WithDefaults()}
}

// Steps returns the steps that run (the waiting one is the OTPVendor).
func (h *MartaSignup) Steps() []Step {
	return []Step{{Name: StepMartaCheck, Run: h.check}, {Name: StepMartaCode, Run: h.code}, {Name: StepMartaProfile, Run: h.profile}}
}

func (h *MartaSignup) load(r *Run) (*events.MartaSignup, MartaAPI, marta.Session, martaState, error) {
	var cmd events.MartaSignup
	var st martaState
	if err := r.Command(&cmd); err != nil {
		return nil, nil, marta.Session{}, st, err
	}
	if _, err := r.Var(varMarta, &st); err != nil {
		return nil, nil, marta.Session{}, st, err
	}
	api, err := h.clients(r.Flow.Tenant)
	if err != nil {
		return nil, nil, marta.Session{}, st, fmt.Errorf("marta client of tenant %s: %w", r.Flow.Tenant, err)
	}
	return &cmd, api, marta.Session{CampaignID: cmd.CampaignID, DeviceType: cmd.DeviceType}, st, nil
}

// contact splits the username into the e-mail or the mobile it is.
func martaContact(cmd *events.MartaSignup) (email, mobile string) {
	if cmd.UsernameIsMobile() {
		return "", cmd.Username
	}
	return cmd.Username, ""
}

func (h *MartaSignup) check(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, s, _, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	email, mobile := martaContact(cmd)
	if cmd.Card != "" {
		email, mobile = "", ""
	}
	res, err := api.CheckCard(ctx, s, cmd.Card, email, mobile)
	if err != nil {
		return Transition{}, err
	}
	checked := &events.MartaCustomerChecked{Branch: res.Branch, CustomerID: res.CustomerID}
	if res.Branch == marta.BranchRegistered {
		return Transition{Outcome: "registered", Events: []events.Event{checked}, Terminal: &events.Failed{Error: events.ErrorInfo{
			Code: events.CodeAlreadyRegistered, Vendor: "marta", Message: "the person is already registered: they sign in instead"}}}, nil
	}
	return Transition{Outcome: res.Branch, Events: []events.Event{checked}, Next: StepMartaCode,
		Vars: map[string]any{varMarta: martaState{Branch: res.Branch, CustomerID: res.CustomerID}}}, nil
}

// code asks MARTA to send the code, by the branch, and makes the flow wait.
func (h *MartaSignup) code(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, s, st, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	email, mobile := martaContact(cmd)
	if st.Branch == marta.BranchHasCard {
		err = api.GenerateVerificationCode(ctx, s, st.CustomerID, email, mobile)
	} else {
		err = api.VerifyEmail(ctx, s, email, mobile)
	}
	if err != nil {
		return Transition{}, err
	}
	channel := events.ChannelEmail
	if mobile != "" {
		channel = events.ChannelSMS
	}
	return Transition{Outcome: "code_sent", Next: StepMartaRegister, Wait: h.otp.Wait(r.Now, channel, cmd.Username)}, nil
}

// Verify implements OTPVendor: the code registers the new user, or gives
// the card holder their credentials.
func (h *MartaSignup) Verify(ctx context.Context, r *Run, code string) (Transition, error) {
	cmd, api, s, st, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	password, err := r.Secret("password")
	if err != nil {
		return Transition{}, err
	}
	email, mobile := martaContact(cmd)
	var acct marta.Account
	var ev events.Event
	if st.Branch == marta.BranchHasCard {
		acct, err = api.ChangeCredentialsWithCode(ctx, s, st.CustomerID, cmd.Username, password, secret.New(code))
		ev = &events.MartaCredentialsChanged{CustomerID: st.CustomerID, Username: cmd.Username, Card: acct.Card}
	} else {
		acct, err = api.RegisterWithCode(ctx, s, marta.Registration{VerificationCode: secret.New(code), Password: password,
			CategoryID: cmd.CategoryID, Username: cmd.Username, Email: email, Mobile: mobile})
		ev = &events.MartaAccountCreated{CustomerID: acct.CustomerID, Username: cmd.Username, Card: acct.Card, FidelyCode: acct.FidelyCode}
	}
	if err != nil {
		if marta.IsWrongCode(err) {
			return Transition{}, fmt.Errorf("marta: %w", ErrWrongCode)
		}
		if tr, ok := martaRefusal(err); ok {
			return tr, nil
		}
		return Transition{}, err
	}
	if acct.CustomerID != "" {
		st.CustomerID = acct.CustomerID
	}
	st.Card, st.FidelyCode = acct.Card, acct.FidelyCode
	return Transition{Outcome: "account_ready", Events: []events.Event{ev}, Next: StepMartaProfile, Vars: map[string]any{varMarta: st}}, nil
}

// Resend implements OTPVendor by sending the code again.
func (h *MartaSignup) Resend(ctx context.Context, r *Run) (Transition, error) {
	tr, err := h.code(ctx, r)
	tr.Outcome = "code_resent"
	return tr, err
}

// Cancel implements OTPVendor: MARTA has nothing to withdraw.
func (h *MartaSignup) Cancel(context.Context, *Run) error { return nil }

// profile fills in the customer's data after checking the command's profile
// against every visible mandatory field of the campaign.
func (h *MartaSignup) profile(ctx context.Context, r *Run) (Transition, error) {
	cmd, api, s, st, err := h.load(r)
	if err != nil {
		return Transition{}, err
	}
	password, err := r.Secret("password")
	if err != nil {
		return Transition{}, err
	}
	fields, err := api.DataFields(ctx, s, cmd.Username, password)
	if err != nil {
		return Transition{}, err
	}
	var mandatory []string
	for _, f := range fields {
		if f.Mandatory && f.Visible {
			mandatory = append(mandatory, f.Name)
		}
	}
	if missing := cmd.Profile.Missing(mandatory); len(missing) > 0 {
		info := events.ErrorInfo{Code: events.CodeMandatoryFields, Vendor: "marta",
			Message: "the campaign requires profile fields the command did not give"}
		for _, m := range missing {
			info.Fields = append(info.Fields, events.FieldError{Field: "profile." + m, Message: "required by the campaign"})
		}
		return Transition{Outcome: "mandatory_fields", Terminal: &events.Failed{Error: info}}, nil
	}
	cust, err := api.Customer(ctx, s, cmd.Username, password)
	if err != nil {
		return Transition{}, err
	}
	values := cmd.Profile.Fields()
	if err := api.UpdateCustomer(ctx, s, cmd.Username, password, values); err != nil {
		if tr, ok := martaRefusal(err); ok {
			return tr, nil
		}
		return Transition{}, err
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	card, fidely := firstOf(st.Card, cust.Card), firstOf(st.FidelyCode, cust.FidelyCode)
	customerID := firstOf(st.CustomerID, cust.CustomerID)
	return Transition{Outcome: "profile_completed",
		Events: []events.Event{&events.MartaProfileCompleted{CustomerID: customerID, Card: card, Fields: names}},
		Terminal: &events.Completed{Result: events.MartaResult{CustomerID: customerID, Username: cmd.Username, Card: card,
			FidelyCode: fidely, Branch: st.Branch}}}, nil
}

// martaRefusal maps MARTA's documented refusals to failed events.
func martaRefusal(err error) (Transition, bool) {
	var ve *vendors.Error
	if !errors.As(err, &ve) || ve.Kind != vendors.Permanent {
		return Transition{}, false
	}
	code := ""
	switch ve.Code {
	case marta.CodeUsernameTaken:
		code = events.CodeUsernameTaken
	case marta.CodeEmailTaken:
		code = events.CodeEmailTaken
	case marta.CodeDynamicFieldMandatory, marta.CodeStaticFieldMandatory:
		info := vendorErrorInfo(events.CodeMandatoryFields, err)
		for i := range info.Fields {
			info.Fields[i].Field = "profile." + info.Fields[i].Field
		}
		return Transition{Outcome: "mandatory_fields", Terminal: &events.Failed{Error: info}}, true
	default:
		return Transition{}, false
	}
	return Transition{Outcome: code, Terminal: &events.Failed{Error: vendorErrorInfo(code, err)}}, true
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
