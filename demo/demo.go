// Package demo runs registrar end to end with nothing to set up: an
// embedded NATS JetStream server, an embedded SQLite store in a temporary
// directory, the vendor simulators and the service in one process. It
// publishes sample registrations covering every flow that exists, prints
// their events as they happen and a summary, and reports whether every flow
// reached its expected terminal state. `registrar demo` runs it; so does a
// test.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/service"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/engage"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Options configure a demo run.
type Options struct {
	// Out receives the event log and the summary.
	Out io.Writer
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Timeout bounds the whole run; default 60s.
	Timeout time.Duration
	// Dir holds the demo's state; empty: a temporary directory removed at
	// the end.
	Dir string
	// Registry receives the service's metrics; nil: a registry of its own.
	Registry *prometheus.Registry
}

// Result is what a demo run saw.
type Result struct {
	Scenarios []Outcome
	// ContactsCreated counts successful contact creations at the simulator.
	ContactsCreated int
	// WantContactsCreated is how many the scenarios should create.
	WantContactsCreated int
	// ActivationEmails counts the activation e-mails the CloudSuite
	// simulator sent; WantActivationEmails is how many the scenarios
	// should trigger.
	ActivationEmails, WantActivationEmails int
}

// OK reports whether every scenario ended as expected and the simulator saw
// the expected side effects.
func (r Result) OK() bool {
	for _, o := range r.Scenarios {
		if !o.OK() {
			return false
		}
	}
	return r.ContactsCreated == r.WantContactsCreated && r.ActivationEmails == r.WantActivationEmails
}

// Outcome is one scenario's expected and observed terminal event.
type Outcome struct {
	Name      string
	Key       string // registrationId, or the command's Nats-Msg-Id for unreadable commands
	Want      string // terminal type, with ":code" for failed
	Got       string
	Terminals int // terminal events seen for the key
	Events    []string
	// Once, if set, is an event type that must come exactly once (a user
	// the CloudSuite poller announces).
	Once string
}

// OK reports whether exactly one terminal event of the expected kind came
// (and exactly one Once event, if set).
func (o Outcome) OK() bool {
	if o.Got != o.Want || o.Terminals != 1 {
		return false
	}
	if o.Once == "" {
		return true
	}
	n := 0
	for _, e := range o.Events {
		if e == o.Once {
			n++
		}
	}
	return n == 1
}

// Demo tenants.
const (
	tenantClub   = "acme"   // one club chain on the simulator's default account
	tenantStrict = "strict" // an account whose clubs also require a mobile number
)

// Run runs the demo.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "registrar-demo-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}

	// Simulators: the default account, plus a strict one.
	simCfg := resamania.DefaultSimConfig()
	simCfg.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	strict := simCfg.Accounts[0]
	strict.ClientToken = "strictapi"
	strict.ClientID, strict.ClientSecret, strict.APIKey = "strict-client", "strict-secret", "strict-api-key"
	strict.RequiredFields = []string{"email", "familyName", "givenName", "birthDate", "mobile"}
	simCfg.Accounts = append(simCfg.Accounts, strict)
	// A CloudSuite origin that lists users by pages of two.
	csCfg := cloudsuite.DefaultSimConfig()
	csCfg.PageSize = 2
	sims, err := simulators.Start(simulators.Config{Resamania: &simCfg, CloudSuite: &csCfg})
	if err != nil {
		return Result{}, err
	}
	defer sims.Close()
	acct := simCfg.Accounts[0]
	clubTenant, err := sims.ResamaniaTenant(acct.ClientToken)
	if err != nil {
		return Result{}, err
	}
	strictTenant, err := sims.ResamaniaTenant(strict.ClientToken)
	if err != nil {
		return Result{}, err
	}

	cfg := config.Default()
	cfg.UseDataDir(dir)
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	cfg.Processing.Retry.InitialInterval = 50 * time.Millisecond
	cfg.Tenants = map[string]config.Tenant{
		tenantClub: {Resamania: clubTenant, Marta: sims.MartaTenant(), Engage: sims.EngageTenant(),
			CloudSuite: sims.CloudSuiteTenant(250 * time.Millisecond)},
		tenantStrict: {Resamania: strictTenant},
	}
	svc, err := service.New(ctx, service.Options{Config: cfg, Logger: log, Registry: opts.Registry})
	if err != nil {
		return Result{}, err
	}
	defer svc.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(runCtx) }()
	select {
	case <-svc.Running():
	case err := <-runErr:
		return Result{}, fmt.Errorf("service stopped: %w", err)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}

	nc, err := nats.Connect(svc.NATSURL(), nats.Name("registrar-demo"))
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Result{}, err
	}

	w := newWatcher(opts.Out, &driver{ctx: ctx, js: js, sims: sims})
	sub, err := nc.Subscribe(events.EventSubjectPrefix+">", w.onEvent)
	if err != nil {
		return Result{}, err
	}
	defer sub.Unsubscribe()
	dlqSub, err := nc.Subscribe(events.DeadLetterSubjectPrefix+">", w.onDeadLetter)
	if err != nil {
		return Result{}, err
	}
	defer dlqSub.Unsubscribe()

	club := resamania.ClubIRI(acct.ClientToken, acct.Clubs[0].ID)
	node := resamania.NetworkNodeIRI(acct.ClientToken, acct.Clubs[0].NetworkNodeID)
	strictClub := resamania.ClubIRI(strict.ClientToken, strict.Clubs[0].ID)
	strictNode := resamania.NetworkNodeIRI(strict.ClientToken, strict.Clubs[0].NetworkNodeID)
	sims.Resamania.AddContact(acct.ClientToken, resamania.Contact{
		Email: "marie.curie@example.com", GivenName: "Marie", FamilyName: "Curie", BirthDate: "1990-11-07",
		State: resamania.StateProspect, ClubID: club,
	})

	// Prospects of the Lyon club who register in Paris: the network
	// search finds them there. (Justine, of the simulator's defaults, is
	// transferred.)
	lyon := resamania.ClubIRI(acct.ClientToken, acct.Clubs[1].ID)
	seeded := map[string]string{} // given name → contact IRI
	for _, p := range []struct{ email, given, mobile string }{
		{"leo.martin@example.com", "Léo", "+33611112222"},
		{"mia.bernard@example.com", "Mia", "+33633334444"},
		{"noa.petit@example.com", "Noa", "+33655556666"},
		{"eva.roux@example.com", "Eva", "+33677778888"},
		{"tom.leroy@example.com", "Tom", "+33699990000"},
	} {
		c := sims.Resamania.AddContact(acct.ClientToken, resamania.Contact{Email: p.email, GivenName: p.given, FamilyName: "Prospect",
			BirthDate: "1993-05-17", State: resamania.StateProspect, ClubID: lyon, Mobile: p.mobile})
		seeded[p.given] = c.ID
	}
	// Tom's temporary contact in Paris, made by a front desk: a
	// resamania.migrate command moves his Lyon data into it.
	seeded["Tom temp"] = sims.Resamania.AddContact(acct.ClientToken, resamania.Contact{Email: "tom.leroy@example.com", GivenName: "Tom",
		FamilyName: "Temp", BirthDate: "1993-05-17", State: resamania.StateTemp, ClubID: club}).ID
	// Mia's cart, made in Lyon: after the migration it shows her Paris contact.
	sims.Resamania.AddSale(acct.ClientToken, resamania.SimSale{ID: 33, ContactID: seeded["Mia"]})

	fmt.Fprintf(opts.Out, "registrar demo: NATS %s, admin http://%s, Resamania simulator %s\n\n", svc.NATSURL(), svc.AdminAddr(), sims.ResamaniaURL)

	lyonNode := resamania.NetworkNodeIRI(acct.ClientToken, acct.Clubs[1].NetworkNodeID)
	scenarios := scenarios(club, node, lyon, lyonNode, strictClub, strictNode)
	scenarios = append(scenarios, standalone(club, node, lyon, seeded)...)
	scenarios = append(scenarios, martaScenarios()...)
	// A marketing contact Engage knows already: the upsert updates it.
	sims.Engage.AddContact(engage.Contact{EmailAddress: "known.lead@example.com",
		Attributes: []engage.Attribute{{Name: "FirstName", Value: "Grace"}}})
	scenarios = append(scenarios, engageScenarios()...)
	// A customer the ERP created before: a reviewed user is linked to it.
	sims.CloudSuite.AddCustomer(cloudsuite.DemoOrigin, demoExistingCustomer, map[string]any{"name": "Houten Hardware BV"})
	scenarios = append(scenarios, cloudsuiteScenarios()...)
	want, wantActivations := 0, 0
	for _, sc := range scenarios {
		want += sc.creates
		wantActivations += sc.activations
	}
	for _, phase := range []int{1, 2} {
		for _, sc := range scenarios {
			if sc.phase != phase {
				continue
			}
			if sc.before != nil {
				sc.before(sims)
			}
			w.expect(sc)
			for i, body := range sc.bodies() {
				msg := nats.NewMsg(sc.subject)
				msg.Data = body
				msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d", sc.msgID(), i))
				if _, err := js.PublishMsg(ctx, msg); err != nil {
					return Result{}, fmt.Errorf("publish %s: %w", sc.name, err)
				}
			}
		}
		if phase == 1 {
			// Users register in the web shop: the poller finds them on its
			// next round, on two pages, once each.
			for _, u := range demoCloudSuiteUsers() {
				sims.CloudSuite.AddUser(cloudsuite.DemoOrigin, u)
			}
		}
		if err := w.wait(ctx, phase); err != nil {
			fmt.Fprintf(opts.Out, "\n%v\n", err)
			break
		}
	}
	// Let a duplicate terminal event, if there were one, show up.
	time.Sleep(300 * time.Millisecond)

	res := Result{Scenarios: w.outcomes(), WantContactsCreated: want, WantActivationEmails: wantActivations}
	res.ContactsCreated = sims.Resamania.CountResponses("POST", "/contacts", 201)
	for _, u := range sims.CloudSuite.Users(cloudsuite.DemoOrigin) {
		if key, ok := u["key"].(string); ok {
			res.ActivationEmails += sims.CloudSuite.ActivationEmails(key)
		}
	}
	printSummary(opts.Out, res)
	stop()
	if err := <-runErr; err != nil {
		return res, err
	}
	return res, nil
}

// scenario is one sample registration.
type scenario struct {
	name    string
	phase   int // scenarios of phase 1 run together, then phase 2
	subject string
	key     string // registrationId the terminal event carries ("" for unreadable commands)
	body    string
	copies  int // how many times it is published (with different Nats-Msg-Ids)
	want    string
	creates int // contacts it should create at the simulator
	// activations is how many CloudSuite activation e-mails it should
	// trigger.
	activations int
	// once is an event type that must come exactly once.
	once   string
	before func(*simulators.Set)
	// react, if set, is called with each event of the scenario, as a
	// person (or upstream) would react: submit a code, cancel.
	react func(d *driver, eventType string)
}

// driver publishes the commands a person's answers become.
type driver struct {
	ctx  context.Context
	js   jetstream.JetStream
	sims *simulators.Set
	n    int
	mu   sync.Mutex
}

func (d *driver) publish(cmdType, body string) {
	d.mu.Lock()
	d.n++
	id := fmt.Sprintf("demo-steer-%d", d.n)
	d.mu.Unlock()
	m := nats.NewMsg(events.CommandSubject(cmdType))
	m.Data = []byte(body)
	m.Header.Set(nats.MsgIdHdr, id)
	_, _ = d.js.PublishMsg(d.ctx, m)
}

// submit sends a code for the registration.
func (d *driver) submit(id, code string) {
	d.publish(events.CmdOTPSubmit, fmt.Sprintf(`{"registrationId":%q,"code":%q}`, id, code))
}

// textedCode is the last code the Resamania simulator texted to phone.
func (d *driver) textedCode(phone string) string {
	sms := d.sims.Resamania.SMS()
	for i := len(sms) - 1; i >= 0; i-- {
		if sms[i].To == phone {
			return sms[i].Code
		}
	}
	return ""
}

func (s scenario) msgID() string { return "demo-" + strings.ReplaceAll(s.name, " ", "-") }

func (s scenario) bodies() [][]byte {
	if s.subject == "" {
		return nil // started by the CloudSuite poller, not by a command
	}
	n := max(s.copies, 1)
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(s.body)
	}
	return out
}

// matchKey is how the scenario's events are recognised: the
// registrationId, or the command's message id for unreadable commands.
func (s scenario) matchKey() string {
	if s.key != "" {
		return s.key
	}
	return s.msgID() + "-0"
}

func register(id, tenant, club, node, email, extra string) string {
	return fmt.Sprintf(`{"registrationId":%q,"tenant":%q,"clubId":%q,"networkNodeId":%q,
 "contact":{"email":%q,"givenName":"Ada","familyName":"Lovelace","birthDate":"1995-12-10","gender":"female"%s}}`,
		id, tenant, club, node, email, extra)
}

func scenarios(club, node, lyon, lyonNode, strictClub, strictNode string) []scenario {
	regSubject := events.CommandSubject(events.CmdResamaniaRegister)
	big := fmt.Sprintf(`{"registrationId":"demo-oversized","tenant":"acme","padding":%q}`, strings.Repeat("x", 70<<10))
	return []scenario{
		{name: "new person", phase: 1, subject: regSubject, key: "demo-new",
			body: register("demo-new", tenantClub, club, node, "ada.lovelace@example.com", `,"mobile":"+33612345678"`),
			want: "completed", creates: 1},
		{name: "already in the club", phase: 1, subject: regSubject, key: "demo-existing",
			body: register("demo-existing", tenantClub, club, node, "marie.curie@example.com", ""), want: "completed"},
		{name: "published twice", phase: 1, subject: regSubject, key: "demo-twice", copies: 2,
			body: register("demo-twice", tenantClub, club, node, "grace.hopper@example.com", ""), want: "completed", creates: 1},
		{name: "same e-mail race A", phase: 1, subject: regSubject, key: "demo-race-a",
			body: register("demo-race-a", tenantClub, club, node, "alan.turing@example.com", ""), want: "completed", creates: 1},
		{name: "same e-mail race B", phase: 1, subject: regSubject, key: "demo-race-b",
			body: register("demo-race-b", tenantClub, club, node, "alan.turing@example.com", ""), want: "completed"},
		{name: "club requires mobile", phase: 1, subject: regSubject, key: "demo-required",
			body: register("demo-required", tenantStrict, strictClub, strictNode, "emmy.noether@example.com", ""),
			want: "failed:" + events.CodeRequiredFields},
		{name: "bad JSON", phase: 1, subject: regSubject, key: "demo-badjson", body: `{"registrationId": "demo-badjson", `, want: "rejected"},
		{name: "missing e-mail", phase: 1, subject: regSubject, key: "demo-missing",
			body: `{"registrationId":"demo-missing","tenant":"acme","clubId":"` + club + `","networkNodeId":"` + node +
				`","contact":{"givenName":"No","familyName":"Mail","birthDate":"1990-01-01"}}`, want: "rejected"},
		{name: "malformed birth date and club", phase: 1, subject: regSubject, key: "demo-malformed",
			body: `{"registrationId":"demo-malformed","tenant":"acme","clubId":"1","networkNodeId":"` + node +
				`","contact":{"email":"x@example.com","givenName":"A","familyName":"B","birthDate":"10/12/1995"}}`, want: "rejected"},
		{name: "unknown tenant", phase: 1, subject: regSubject, key: "demo-tenant",
			body: register("demo-tenant", "nobody", club, node, "someone@example.com", ""), want: "rejected"},
		// Too large to be read: the rejection is matched by the command's
		// message id (header Registrar-Command-Msg-Id).
		{name: "over 64 KiB", phase: 1, subject: regSubject, body: big, want: "rejected"},
		{name: "vendor fails 3 times", phase: 2, subject: regSubject, key: "demo-transient",
			body: register("demo-transient", tenantClub, club, node, "katherine.johnson@example.com", ""),
			want: "completed", creates: 1,
			before: func(s *simulators.Set) { s.Resamania.Faults().FailNext(3, 503) }},
		{name: "prospect elsewhere: transfer, wrong code then right", phase: 1, subject: regSubject, key: "demo-transfer",
			body: register("demo-transfer", tenantClub, club, node, "justine.doe@example.com", ""), want: "completed",
			react: func(d *driver, typ string) {
				switch typ {
				case "otp.requested":
					d.submit("demo-transfer", "000000") // a typo
				case "otp.rejected":
					d.submit("demo-transfer", d.textedCode("+33612341615")) // read from the phone
				}
			}},
		{name: "prospect elsewhere: transfer cancelled", phase: 1, subject: regSubject, key: "demo-cancel",
			body: register("demo-cancel", tenantClub, club, node, "leo.martin@example.com", ""), want: "failed:" + events.CodeCancelled,
			react: func(d *driver, typ string) {
				if typ == "otp.requested" {
					d.publish(events.CmdCancel, `{"registrationId":"demo-cancel","reason":"the person left the page"}`)
				}
			}},
		{name: "prospect elsewhere: migrate, sale 33", phase: 1, subject: regSubject, key: "demo-migrate",
			body: strings.Replace(register("demo-migrate", tenantClub, club, node, "mia.bernard@example.com", ""),
				`"contact":`, `"onProspectElsewhere":"migrate","saleId":"33","contact":`, 1),
			want: "completed", creates: 1},
		{name: "prospect elsewhere: reject", phase: 1, subject: regSubject, key: "demo-reject",
			body: strings.Replace(register("demo-reject", tenantClub, club, node, "noa.petit@example.com", ""),
				`"contact":`, `"onProspectElsewhere":"reject","contact":`, 1),
			want: "failed:" + events.CodeProspectElsewhere},
		{name: "client of another club", phase: 1, subject: regSubject, key: "demo-client",
			body: register("demo-client", tenantClub, lyon, lyonNode, "john+test@example.com", ""),
			want: "failed:" + events.CodeContactNotTransferable},
		{name: "valid after rejections", phase: 2, subject: regSubject, key: "demo-after",
			body: register("demo-after", tenantClub, club, node, "hedy.lamarr@example.com", ""), want: "completed", creates: 1},
	}
}

// standalone are the scenarios of the commands that transfer or migrate a
// known contact directly.
func standalone(club, node, lyon string, seeded map[string]string) []scenario {
	return []scenario{
		{name: "transfer command", phase: 1, subject: events.CommandSubject(events.CmdResamaniaTransfer), key: "demo-transfer-cmd",
			body: fmt.Sprintf(`{"registrationId":"demo-transfer-cmd","tenant":"acme","contactId":%q,"sourceClubId":%q,"destinationClubId":%q,"destinationNetworkNodeId":%q}`,
				seeded["Eva"], lyon, club, node),
			want: "completed",
			react: func(d *driver, typ string) {
				if typ == "otp.requested" {
					d.submit("demo-transfer-cmd", d.textedCode("+33677778888"))
				}
			}},
		{name: "migrate command", phase: 1, subject: events.CommandSubject(events.CmdResamaniaMigrate), key: "demo-migrate-cmd",
			body: fmt.Sprintf(`{"registrationId":"demo-migrate-cmd","tenant":"acme","sourceContactId":%q,"sourceContactEmail":"tom.leroy@example.com","targetContactId":%q,"targetClubId":%q}`,
				seeded["Tom"], seeded["Tom temp"], club),
			want: "completed"},
	}
}

// martaScenarios are the loyalty sign-ups: a new member, a card holder, a
// registered customer and a profile that lacks a mandatory field.
func martaScenarios() []scenario {
	subject := events.CommandSubject(events.CmdMartaSignup)
	body := func(id, username, birthdate string) string {
		bd := ""
		if birthdate != "" {
			bd = fmt.Sprintf(`"birthdate":%q,`, birthdate)
		}
		return fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","campaignId":%q,"categoryId":"56","deviceType":1,"username":%q,
 "password":"demo-Passw0rd","profile":{"name":"Jane","surname":"Doe","gender":"F",%s"consents":{"usedforpromotions":true}}}`,
			id, marta.DemoCampaignID, username, bd)
	}
	answer := func(id, username string) func(d *driver, typ string) {
		return func(d *driver, typ string) {
			if typ == "otp.requested" {
				code, _ := d.sims.Marta.LastCode(username) // read from the person's mailbox
				d.submit(id, code)
			}
		}
	}
	return []scenario{
		{name: "loyalty: new member", phase: 1, subject: subject, key: "demo-marta-new",
			body: body("demo-marta-new", "jane.doe@example.com", "1992-04-22"), want: "completed",
			react: answer("demo-marta-new", "jane.doe@example.com")},
		{name: "loyalty: card holder without account", phase: 1, subject: subject, key: "demo-marta-card",
			body: body("demo-marta-card", marta.DemoCardHolderEmail, "1980-01-01"), want: "completed",
			react: answer("demo-marta-card", marta.DemoCardHolderEmail)},
		{name: "loyalty: already registered", phase: 1, subject: subject, key: "demo-marta-registered",
			body: body("demo-marta-registered", marta.DemoRegisteredEmail, "1980-01-01"), want: "failed:" + events.CodeAlreadyRegistered},
		{name: "loyalty: birth date missing", phase: 1, subject: subject, key: "demo-marta-mandatory",
			body: body("demo-marta-mandatory", "no.birthdate@example.com", ""), want: "failed:" + events.CodeMandatoryFields,
			react: answer("demo-marta-mandatory", "no.birthdate@example.com")},
	}
}

// engageScenarios are marketing-contact upserts: a new contact, a known
// one.
func engageScenarios() []scenario {
	subject := events.CommandSubject(events.CmdEngageUpsert)
	body := func(id, email string) string {
		return fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","identifier":{"type":"EMAIL","value":%q},"attributes":{"FirstName":"Grace","user.ISOCountryCode":"FR"}}`, id, email)
	}
	return []scenario{
		{name: "marketing: new contact", phase: 1, subject: subject, key: "demo-engage-new", body: body("demo-engage-new", "new.lead@example.com"), want: "completed"},
		{name: "marketing: known contact updated", phase: 1, subject: subject, key: "demo-engage-known", body: body("demo-engage-known", "known.lead@example.com"), want: "completed"},
	}
}

// The CloudSuite users of the demo, and a customer that exists already.
const (
	demoUserNew          = "b3ea7d82-d1e1-420c-bd41-cabc1d9d20c9"
	demoUserExisting     = "5f0c2a8e-7b1d-4c3e-9a6f-2d8e4b1c7a90"
	demoUserRefused      = "9d4e6f1a-2b3c-4d5e-8f70-a1b2c3d4e5f6"
	demoExistingCustomer = "C-1001"
)

// demoCloudSuiteUsers are three users who registered in the web shop.
func demoCloudSuiteUsers() []cloudsuite.SimUser {
	now := time.Now().UTC()
	profile := func(name, city string) []map[string]any {
		return []map[string]any{{"name": name, "street1": "Elzenkade", "house_number": "1", "zip": "3992AD", "city": city, "country": "NL"}}
	}
	return []cloudsuite.SimUser{
		{Key: demoUserNew, Email: "inkoop@cloudsuite.example", FirstName: "Sanne", LastName: "de Vries",
			CreateDate: now.Add(-3 * time.Minute), Profiles: profile("Cloudsuite", "Houten")},
		{Key: demoUserExisting, Email: "orders@hardware.example", FirstName: "Daan", LastName: "Bakker",
			CreateDate: now.Add(-2 * time.Minute), Profiles: profile("Houten Hardware BV", "Houten")},
		{Key: demoUserRefused, Email: "test@spam.example", FirstName: "Test", LastName: "Test",
			CreateDate: now.Add(-time.Minute), Profiles: profile("Test", "Nowhere")},
	}
}

// cloudsuiteScenarios follow the users the poller announces as a reviewer
// would: activate one with a new customer, link one to an existing
// customer, refuse one; and an activation of a user CloudSuite does not
// know.
func cloudsuiteScenarios() []scenario {
	subject := events.CommandSubject(events.CmdCloudSuiteActivate)
	id := func(key string) string { return handlers.CloudSuiteRegistrationID(cloudsuite.DemoOrigin, key) }
	review := func(key, then string) func(d *driver, typ string) {
		return func(d *driver, typ string) {
			if typ != events.EvtCloudSuiteUserRegistered {
				return
			}
			if then == "" {
				d.publish(events.CmdCancel, fmt.Sprintf(`{"registrationId":%q,"reason":"review refused: test account"}`, id(key)))
				return
			}
			d.publish(events.CmdCloudSuiteActivate, then)
		}
	}
	return []scenario{
		{name: "web shop: user activated, customer created", phase: 1, key: id(demoUserNew), want: "completed", once: events.EvtCloudSuiteUserRegistered,
			activations: 1, react: review(demoUserNew, fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","userKey":%q,"customerKey":"C-2001","customer":{"name":"Cloudsuite","city":"Houten","vat":"NL822898044B01"}}`,
				id(demoUserNew), demoUserNew))},
		{name: "web shop: user linked to an existing customer", phase: 1, key: id(demoUserExisting), want: "completed", once: events.EvtCloudSuiteUserRegistered,
			activations: 1, react: review(demoUserExisting, fmt.Sprintf(`{"registrationId":%q,"tenant":"acme","userKey":%q,"customerKey":%q}`,
				id(demoUserExisting), demoUserExisting, demoExistingCustomer))},
		{name: "web shop: review refused", phase: 1, key: id(demoUserRefused), want: "failed:" + events.CodeCancelled, once: events.EvtCloudSuiteUserRegistered,
			react: review(demoUserRefused, "")},
		{name: "web shop: activation of an unknown user", phase: 1, subject: subject, key: "demo-cloudsuite-unknown", want: "failed:" + events.CodeVendorRejected,
			body: `{"registrationId":"demo-cloudsuite-unknown","tenant":"acme","userKey":"00000000-0000-4000-8000-000000000000","customerKey":"C-1001"}`},
	}
}

// watcher follows the events and matches them to scenarios.
type watcher struct {
	out io.Writer
	mu  sync.Mutex
	// by key
	want      map[string]*scenario
	got       map[string]string
	terminals map[string]int
	events    map[string][]string
	phases    map[string]int
	changed   chan struct{}
	start     time.Time
	driver    *driver
}

func newWatcher(out io.Writer, d *driver) *watcher {
	return &watcher{out: out, driver: d, want: map[string]*scenario{}, got: map[string]string{}, terminals: map[string]int{},
		events: map[string][]string{}, phases: map[string]int{}, changed: make(chan struct{}, 1), start: time.Now()}
}

func (w *watcher) expect(sc scenario) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sc.matchKey()
	w.want[k] = &sc
	w.phases[k] = sc.phase
}

func (w *watcher) onEvent(m *nats.Msg) {
	var ev struct {
		events.Envelope
		Error   *events.ErrorInfo        `json:"error"`
		Errors  []events.FieldError      `json:"errors"`
		Result  json.RawMessage          `json:"result"`
		Contact *events.ResamaniaContact `json:"contact"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	key := ev.RegistrationID
	if ev.Type == "rejected" && key == "" {
		key = m.Header.Get(handlers.HeaderCommandMsgID)
	}
	detail := ""
	switch {
	case ev.Error != nil:
		detail = ev.Error.Code + ": " + ev.Error.Message
		if len(ev.Error.Fields) > 0 {
			detail += " " + fieldList(ev.Error.Fields)
		}
	case len(ev.Errors) > 0:
		detail = fieldList(ev.Errors)
	case ev.Contact != nil:
		detail = ev.Contact.ID + " " + ev.Contact.Number
	case len(ev.Result) > 0:
		detail = string(ev.Result)
	default:
		detail = ownFields(m.Data)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, "%7.3fs  %-16s %-28s %s\n", time.Since(w.start).Seconds(), orDash(ev.RegistrationID), ev.Type, truncate(detail, 110))
	w.events[key] = append(w.events[key], ev.Type)
	if sc := w.want[key]; sc != nil && sc.react != nil {
		go sc.react(w.driver, ev.Type)
	}
	switch ev.Type {
	case "completed", "rejected":
		w.got[key] = ev.Type
		w.terminals[key]++
	case "failed":
		w.got[key] = "failed:" + ev.Error.Code
		w.terminals[key]++
	}
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) onDeadLetter(m *nats.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, "%7.3fs  %-16s %-28s %s (%s attempts)\n", time.Since(w.start).Seconds(),
		orDash(m.Header.Get(handlers.HeaderRegistrationID)), "DEAD LETTER "+m.Subject, m.Header.Get(handlers.HeaderReason), m.Header.Get(handlers.HeaderAttempts))
}

// wait returns when every scenario of the phase has a terminal event.
func (w *watcher) wait(ctx context.Context, phase int) error {
	for {
		w.mu.Lock()
		var missing []string
		for k, p := range w.phases {
			if p == phase && w.terminals[k] == 0 {
				missing = append(missing, w.want[k].name)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			sort.Strings(missing)
			return fmt.Errorf("timed out waiting for: %s", strings.Join(missing, ", "))
		}
	}
}

func (w *watcher) outcomes() []Outcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Outcome
	for k, sc := range w.want {
		out = append(out, Outcome{Name: sc.name, Key: k, Want: sc.want, Got: w.got[k], Terminals: w.terminals[k], Events: w.events[k], Once: sc.once})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func printSummary(out io.Writer, r Result) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tREGISTRATION\tEXPECTED\tGOT\tTERMINAL EVENTS\tOK")
	for _, o := range r.Scenarios {
		ok := "yes"
		if !o.OK() {
			ok = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", o.Name, o.Key, o.Want, orDash(o.Got), o.Terminals, ok)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\ncontacts created at the Resamania simulator: %d (expected %d)\n", r.ContactsCreated, r.WantContactsCreated)
	fmt.Fprintf(out, "activation e-mails sent by the CloudSuite simulator: %d (expected %d)\n", r.ActivationEmails, r.WantActivationEmails)
	if r.OK() {
		fmt.Fprintln(out, "demo: every flow reached its expected terminal state")
	} else {
		fmt.Fprintln(out, "demo: FAILED")
	}
}

// ownFields shows an event's fields besides its envelope, compactly.
func ownFields(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for _, k := range []string{"eventId", "type", "registrationId", "flow", "occurredAt"} {
		delete(fields, k)
	}
	if len(fields) == 0 {
		return ""
	}
	b, _ := json.Marshal(fields)
	return string(b)
}

func fieldList(fs []events.FieldError) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Field + " (" + f.Message + ")"
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var _ = errors.New
