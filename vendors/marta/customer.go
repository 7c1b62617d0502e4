package marta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

// Branches of CheckCard.
const (
	BranchNew        = "new"        // no such customer: VerifyEmail, then RegisterWithCode
	BranchHasCard    = "has_card"   // a card but no account: GenerateVerificationCode, then ChangeCredentialsWithCode
	BranchRegistered = "registered" // already registered: the customer logs in
)

// CheckResult is the answer of CheckCard.
type CheckResult struct {
	Branch     string // BranchNew, BranchHasCard or BranchRegistered
	CustomerID string // the existing customer (BranchHasCard, BranchRegistered); "" for BranchNew
}

// Registration is the input of RegisterWithCode.
type Registration struct {
	VerificationCode secret.String // the OTP VerifyEmail sent
	Password         secret.String // the password the customer chose
	CategoryID       string        // the virtual card category to activate
	Username         string        // what the customer entered: the e-mail or the mobile number
	Email            string        // sent as mailcontactdata, when the customer entered an e-mail
	Mobile           string        // sent as mobilecontactdata, when the customer entered a mobile number
}

// Account is the account info of a registration or credentials change.
type Account struct {
	CustomerID string `json:"customerid"`
	Card       string `json:"card"`
	FidelyCode string `json:"fidelyCode"` // the card's 14-digit barcode
	Username   string `json:"username"`
}

// DataField is one field of a campaign's customer data form.
type DataField struct {
	Name      string `json:"name" yaml:"name"`
	Visible   bool   `json:"visible" yaml:"visible"`
	Mandatory bool   `json:"mandatory" yaml:"mandatory"`
	// Privacy marks a consent (PrivacyCustomDataFields on the wire): a
	// boolean such as "usedforpromotions".
	Privacy bool `json:"privacy,omitempty" yaml:"privacy,omitempty"`
}

// Customer is a customer's data as GET /customer gives it.
type Customer struct {
	CustomerID string
	Card       string
	FidelyCode string
	Name       string
	Surname    string
	Gender     string // "M", "F" or "N"
	Birthdate  string
	UserName   string
	Mail       string // mailContactData
	Mobile     string // mobileContactData
	// Privacy holds the consents, keys lower-cased ("usedforpromotions"),
	// as DataFields names them.
	Privacy map[string]bool
	// Fields holds every other member of the reply (custom fields,
	// balance_points, status, category…), by the vendor's name.
	Fields map[string]any
}

// CheckCard looks the customer up by card number, e-mail or mobile (give at
// least one) with GET /customer/checkcard. The vendor's three answers are
// branches, not errors: 402 with AnswerCode 53 is BranchNew; 200 with
// registered_customer false is BranchHasCard with the customerid; 200 with
// registered_customer true is BranchRegistered. Anything else is a
// *vendors.Error.
func (c *Client) CheckCard(ctx context.Context, s Session, card, email, mobile string) (CheckResult, error) {
	a, err := c.synchro(OpCheckCard, s)
	if err != nil {
		return CheckResult{}, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"card": card, "email": email, "mobile": mobile} {
		if v = strings.TrimSpace(v); v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return CheckResult{}, invalidArgument(OpCheckCard, "card, email or mobile is required")
	}
	var r struct {
		Registered *bool      `json:"registered_customer"`
		CustomerID flexString `json:"customerid"`
	}
	err = c.do(ctx, OpCheckCard, a, http.MethodGet, "/customer/checkcard", q, nil, &r)
	var ve *vendors.Error
	switch {
	case errors.As(err, &ve) && ve.Status == http.StatusPaymentRequired && ve.Code == CodeCustomerInactive:
		return CheckResult{Branch: BranchNew}, nil
	case err != nil:
		return CheckResult{}, err
	case r.Registered == nil:
		return CheckResult{}, invalidAnswer(OpCheckCard, http.StatusOK, "the reply has no registered_customer", nil)
	case *r.Registered:
		return CheckResult{Branch: BranchRegistered, CustomerID: string(r.CustomerID)}, nil
	case r.CustomerID == "":
		return CheckResult{}, invalidAnswer(OpCheckCard, http.StatusOK, "the reply has no customerid", nil)
	default:
		return CheckResult{Branch: BranchHasCard, CustomerID: string(r.CustomerID)}, nil
	}
}

// VerifyEmail asks the vendor to send a verification code (OTP) to the
// e-mail address (sent as "emails", sic) or, if email is empty, to the
// mobile number, with POST /customer/verifyemail. The code is then given to
// RegisterWithCode.
func (c *Client) VerifyEmail(ctx context.Context, s Session, email, mobile string) error {
	a, err := c.synchro(OpVerifyEmail, s)
	if err != nil {
		return err
	}
	if email == "" && mobile == "" {
		return invalidArgument(OpVerifyEmail, "email or mobile is required")
	}
	in := struct {
		CampaignID string `json:"campaignid"`
		Emails     string `json:"emails,omitempty"`
		Mobile     string `json:"mobile,omitempty"`
		DeviceType string `json:"devicetype"`
	}{s.CampaignID, email, mobile, a.device}
	return c.do(ctx, OpVerifyEmail, a, http.MethodPost, "/customer/verifyemail", nil, in, nil)
}

// RegisterWithCode checks the verification code and creates the account
// with PUT /customer/registrationVCWithVerificationCode. Typical refusals:
// CodeWrongVerificationCode (IsWrongCode), CodeUsernameTaken,
// CodeEmailTaken.
func (c *Client) RegisterWithCode(ctx context.Context, s Session, in Registration) (Account, error) {
	a, err := c.synchro(OpRegister, s)
	if err != nil {
		return Account{}, err
	}
	switch {
	case in.VerificationCode.IsZero():
		return Account{}, invalidArgument(OpRegister, "verification code is required")
	case in.Password.IsZero():
		return Account{}, invalidArgument(OpRegister, "password is required")
	case in.Username == "":
		return Account{}, invalidArgument(OpRegister, "username is required")
	case in.Email == "" && in.Mobile == "":
		return Account{}, invalidArgument(OpRegister, "email or mobile is required")
	}
	body := struct {
		VerificationCode string `json:"verificationcode"`
		Password         string `json:"password"`
		DeviceType       string `json:"devicetype"`
		CampaignID       string `json:"campaignid"`
		CategoryID       string `json:"categoryID,omitempty"`
		Username         string `json:"username"`
		Mail             string `json:"mailcontactdata,omitempty"`
		Mobile           string `json:"mobilecontactdata,omitempty"`
	}{in.VerificationCode.Reveal(), in.Password.Reveal(), a.device, s.CampaignID, in.CategoryID, in.Username, in.Email, in.Mobile}
	return c.account(ctx, OpRegister, a, http.MethodPut, "/customer/registrationVCWithVerificationCode", body)
}

// GenerateVerificationCode asks the vendor to send a verification code to
// the e-mail address (or, if email is empty, the mobile number) of the
// existing customer customerID (from CheckCard's BranchHasCard), with POST
// /customer/generateverificationcode. The code is then given to
// ChangeCredentialsWithCode.
func (c *Client) GenerateVerificationCode(ctx context.Context, s Session, customerID, email, mobile string) error {
	a, err := c.synchro(OpGenerateCode, s)
	if err != nil {
		return err
	}
	switch {
	case customerID == "":
		return invalidArgument(OpGenerateCode, "customer id is required")
	case email == "" && mobile == "":
		return invalidArgument(OpGenerateCode, "email or mobile is required")
	}
	in := struct {
		CustomerID string `json:"customerid"`
		CampaignID string `json:"campaignid"`
		Emails     string `json:"emails,omitempty"`
		Mobile     string `json:"mobile,omitempty"`
		DeviceType string `json:"devicetype"`
	}{customerID, s.CampaignID, email, mobile, a.device}
	return c.do(ctx, OpGenerateCode, a, http.MethodPost, "/customer/generateverificationcode", nil, in, nil)
}

// ChangeCredentialsWithCode checks the verification code and gives the
// existing customer a username and password, with PUT
// /customer/changeUAPByVerificationCode.
func (c *Client) ChangeCredentialsWithCode(ctx context.Context, s Session, customerID, username string, password, code secret.String) (Account, error) {
	a, err := c.synchro(OpChangeCredentials, s)
	if err != nil {
		return Account{}, err
	}
	switch {
	case customerID == "" || username == "":
		return Account{}, invalidArgument(OpChangeCredentials, "customer id and username are required")
	case password.IsZero() || code.IsZero():
		return Account{}, invalidArgument(OpChangeCredentials, "password and verification code are required")
	}
	body := struct {
		CustomerID       string `json:"customerid"`
		Username         string `json:"username"`
		Password         string `json:"password"`
		VerificationCode string `json:"verificationcode"`
	}{customerID, username, password.Reveal(), code.Reveal()}
	return c.account(ctx, OpChangeCredentials, a, http.MethodPut, "/customer/changeUAPByVerificationCode", body)
}

// account sends a call answered with account info.
func (c *Client) account(ctx context.Context, op string, a authRequest, method, path string, in any) (Account, error) {
	var r struct {
		CustomerID flexString `json:"customerid"`
		Card       flexString `json:"card"`
		FidelyCode flexString `json:"fidelyCode"`
		Username   string     `json:"username"`
	}
	if err := c.do(ctx, op, a, method, path, nil, in, &r); err != nil {
		return Account{}, err
	}
	if r.CustomerID == "" || r.Card == "" {
		return Account{}, invalidAnswer(op, http.StatusOK, "the reply has no customerid or card", nil)
	}
	return Account{CustomerID: string(r.CustomerID), Card: string(r.Card), FidelyCode: string(r.FidelyCode), Username: r.Username}, nil
}

// DataFields returns the campaign's customer data form (GET
// /customer/customerdatafields/{campaignid}) as the customer with username
// and password: the personal data fields, then the consents (Privacy).
func (c *Client) DataFields(ctx context.Context, s Session, username string, password secret.String) ([]DataField, error) {
	a, err := c.authFor(OpDataFields, s, ScopeCustomer, username, password)
	if err != nil {
		return nil, err
	}
	var r struct {
		Custom  []DataField `json:"CustomDataFields"`
		Privacy []DataField `json:"PrivacyCustomDataFields"`
	}
	if err := c.do(ctx, OpDataFields, a, http.MethodGet, "/customer/customerdatafields/"+url.PathEscape(s.CampaignID), nil, nil, &r); err != nil {
		return nil, err
	}
	out := make([]DataField, 0, len(r.Custom)+len(r.Privacy))
	for _, f := range r.Custom {
		f.Privacy = false
		out = append(out, f)
	}
	for _, f := range r.Privacy {
		f.Privacy = true
		out = append(out, f)
	}
	return out, nil
}

// Customer returns the data of the customer with username and password (GET
// /customer), with the card and its FidelyCode.
func (c *Client) Customer(ctx context.Context, s Session, username string, password secret.String) (Customer, error) {
	a, err := c.authFor(OpGetCustomer, s, ScopeCustomer, username, password)
	if err != nil {
		return Customer{}, err
	}
	var raw map[string]json.RawMessage
	if err := c.do(ctx, OpGetCustomer, a, http.MethodGet, "/customer", nil, nil, &raw); err != nil {
		return Customer{}, err
	}
	return customerFrom(raw), nil
}

// customerFrom maps GET /customer's members, whatever their letter case.
func customerFrom(raw map[string]json.RawMessage) Customer {
	cu := Customer{Privacy: map[string]bool{}, Fields: map[string]any{}}
	str := func(v json.RawMessage) string {
		var f flexString
		_ = json.Unmarshal(v, &f)
		return string(f)
	}
	for k, v := range raw {
		switch strings.ToLower(k) {
		case "answercode":
		case "customerid":
			cu.CustomerID = str(v)
		case "card":
			cu.Card = str(v)
		case "fidelycode":
			cu.FidelyCode = str(v)
		case "name":
			cu.Name = str(v)
		case "surname":
			cu.Surname = str(v)
		case "gender":
			cu.Gender = str(v)
		case "birthdate":
			cu.Birthdate = str(v)
		case "username":
			cu.UserName = str(v)
		case "mailcontactdata", "mail", "email":
			cu.Mail = str(v)
		case "mobilecontactdata", "mobile":
			cu.Mobile = str(v)
		case "privacy":
			var p map[string]any
			if json.Unmarshal(v, &p) == nil {
				for pk, pv := range p {
					cu.Privacy[strings.ToLower(pk)] = truthy(pv)
				}
			}
		default:
			var x any
			if json.Unmarshal(v, &x) == nil {
				cu.Fields[k] = x
			}
		}
	}
	return cu
}

// truthy reads a consent given as a boolean, "true"/"1" or a number.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(x)
		return b
	case float64:
		return x != 0
	}
	return false
}

// UpdateCustomer sets the customer's data with PUT /customer: fields by the
// vendor's names ("name", "surname", "gender", "birthdate",
// "usedforpromotions", "mailcontactdata", "mobilecontactdata", custom
// fields…). A missing mandatory field of the campaign is refused with
// CodeStaticFieldMandatory or CodeDynamicFieldMandatory, Fields naming it.
func (c *Client) UpdateCustomer(ctx context.Context, s Session, username string, password secret.String, fields map[string]any) error {
	a, err := c.authFor(OpUpdateCustomer, s, ScopeCustomer, username, password)
	if err != nil {
		return err
	}
	if fields == nil {
		fields = map[string]any{}
	}
	return c.do(ctx, OpUpdateCustomer, a, http.MethodPut, "/customer", nil, fields, nil)
}

// flexString reads a JSON string or number as a string (ids and card
// numbers come as either).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}
