package scaleout

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/store/postgres/pgtest"
	"github.com/registrar-dev/registrar/vendors/fault"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

const (
	registrations = 1000
	batches       = 20 // registrations are published in batches…
	batchEvery    = 100 * time.Millisecond
	// …and when half of them are published, one registrar and one NATS
	// node are killed; the registrar is started again restartRegistrar
	// later, the node restartNATS later.
	restartRegistrar = 3 * time.Second
	restartNATS      = 8 * time.Second
	// How long every registration gets to reach its terminal event once
	// the last command is published.
	terminalTimeout = 3 * time.Minute
	// The registrars' AckWait: the work a killed instance held comes back
	// to the other one after it (the default, 2m, would only make the test
	// longer); retries must fit in it.
	ackWait        = 20 * time.Second
	maxElapsedTime = 10 * time.Second

	vendorLatency = 50 * time.Millisecond

	registerSubject = "registration.cmd.resamania.register"
	commandsStream  = "REGISTRATION_COMMANDS"
	eventsStream    = "REGISTRATION_EVENTS"
	dlqStream       = "REGISTRATION_DLQ"
	stepsStream     = "REGISTRAR_STEPS"
)

// TestScaleOut runs 1,000 registrations through two registrar processes
// sharing a PostgreSQL schema, over a three-node NATS JetStream cluster
// (streams with three replicas). Halfway through the publishing it kills
// with SIGKILL the registrar that holds the outbox lease and the NATS node
// the other registrar is connected to, then starts both again (the
// registrar as a supervisor would: again if it fails to start). Every
// registration must end with exactly one terminal event (completed), no
// message may be dead-lettered, the outbox, the consumers and the step
// stream must drain, and the vendor must have created exactly one contact
// per registration, the one the registration completed with.
func TestScaleOut(t *testing.T) {
	if os.Getenv("REGISTRAR_SCALEOUT") != "1" {
		t.Skip("scale-out test skipped (set REGISTRAR_SCALEOUT=1): it builds registrar and nats-server and runs a 3-node NATS cluster and two registrars for about a minute")
	}
	baseDSN := os.Getenv(pgtest.DSNEnv)
	if baseDSN == "" {
		t.Skip("scale-out test skipped: " + pgtest.DSNEnv + " is not set (it needs a PostgreSQL database)")
	}
	ctx := t.Context()

	// Everything the child processes use is set up before them, so that
	// their clean-up (registered by newProcs) runs first: processes, then
	// simulators, schema and temporary directory.
	dir := t.TempDir()
	root := moduleRoot(t)
	dsn := pgtest.FreshSchema(t, baseDSN)
	natsBin, natsWhy := natsServerBinary(t, root, dir)
	regBin := filepath.Join(dir, "registrar")
	goBuild(t, root, regBin, "./cmd/registrar")
	t.Logf("nats-server: %s", natsWhy)

	sc := resamania.DefaultSimConfig()
	sc.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	// A vendor that takes its time, as the benchmark's: flows overlap, so
	// the kills find many of them in flight.
	sc.Faults = fault.Config{Latency: vendorLatency}
	sims, err := simulators.Start(simulators.Config{Resamania: &sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	acct := sc.Accounts[0]
	seeded := len(sims.Resamania.Contacts(acct.ClientToken))

	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })

	ps := newProcs(t, dir)
	cluster := startCluster(t, ps, natsBin, dir)
	t.Logf("NATS cluster up: %s", cluster.urls())

	// Two registrars, one configuration each (they differ in their admin
	// port and data directory), the same NATS cluster, schema and data key.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SCALEOUT_DATA_KEY=" + base64.StdEncoding.EncodeToString(key),
		"SCALEOUT_RESAMANIA_SECRET=" + acct.ClientSecret,
		"SCALEOUT_RESAMANIA_API_KEY=" + acct.APIKey,
	}
	adminPorts := freePorts(t, 2)
	var regs []*registrar
	for i, name := range []string{"registrar-a", "registrar-b"} {
		cfgPath := filepath.Join(dir, name+".yaml")
		yaml := registrarConfig(cluster.urls(), dsn, filepath.Join(dir, name+"-data"), adminPorts[i], sims.ResamaniaURL, acct)
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &registrar{adminPort: adminPorts[i]}
		r.proc = ps.add(name, regBin, []string{"serve", "--config", cfgPath}, env)
		regs = append(regs, r)
	}
	// Both start at once, as replicas of a deployment do: they race to
	// create the streams and consumers. An instance that exits on its own
	// is started again, as by a supervisor (compose's restart:
	// unless-stopped), and its exit reported. (Registered after newProcs:
	// the supervisor stops before the processes are killed.)
	for _, r := range regs {
		r.start()
	}
	t.Cleanup(supervise(t, regs))
	for _, r := range regs {
		if err := r.waitReady(ctx, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("registrars ready: %s (pid %d, admin :%d), %s (pid %d, admin :%d)",
		regs[0].name, regs[0].pid(), regs[0].adminPort, regs[1].name, regs[1].pid(), regs[1].adminPort)

	// The test's client knows every node, so it fails over like the
	// registrars do.
	nc, err := nats.Connect(cluster.urls(), nats.Name("scaleout-test"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{commandsStream, eventsStream, dlqStream, stepsStream} {
		st, err := js.Stream(ctx, s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", s, r)
		}
	}
	watch, err := watchTerminals(ctx, js, eventsStream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.stop)

	// Publish in batches; when half is out, kill.
	type pubResult struct {
		failedAttempts, duplicates int
		took                       time.Duration
		err                        error
	}
	halfway := make(chan struct{})
	published := make(chan pubResult, 1)
	start := time.Now()
	go func() {
		var res pubResult
		defer func() { res.took = time.Since(start); published <- res }()
		per := registrations / batches
		tick := time.NewTicker(batchEvery)
		defer tick.Stop()
		for b := range batches {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := b * per; i < (b+1)*per; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					defer cancel()
					failed, dup, err := publishWithRetry(pctx, js, registerSubject, fmt.Sprintf("scaleout-cmd-%04d", i), registerBody(acct, i))
					mu.Lock()
					defer mu.Unlock()
					res.failedAttempts += failed
					if dup {
						res.duplicates++
					}
					if err != nil && res.err == nil {
						res.err = err
					}
				}()
			}
			wg.Wait()
			if res.err != nil {
				return
			}
			if b == batches/2-1 {
				close(halfway)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				res.err = ctx.Err()
				return
			}
		}
	}()

	var pub pubResult
	select {
	case <-halfway:
	case pub = <-published:
		t.Fatalf("publishing stopped before half of it: %v", pub.err)
	}

	// The registrar to kill: the one holding the outbox lease (its death
	// stops forwarding until the lease expires and the other takes it).
	victim, holder := regs[1], ""
	var leaseHolder string
	if err := pg.QueryRow(ctx, `SELECT holder FROM leases WHERE name = 'outbox-forwarder' AND expires_at > now()`).Scan(&leaseHolder); err == nil {
		holder = leaseHolder
		for _, r := range regs {
			if holderPID(leaseHolder) == r.pid() {
				victim = r
			}
		}
	}
	killedAt := time.Since(start)
	terminalAtKill, _ := watch.count()
	victimPID := victim.pid()
	victim.killByTest()
	// The NATS node to kill: the one the surviving registrar is connected
	// to, so that it has to fail over (else the leader of the step stream).
	// (The killed one's connection may take a moment to go.)
	var node *natsNode
	nodeWhy := "the surviving registrar's server"
	_ = waitUntil(ctx, 2*time.Second, 50*time.Millisecond, func() error {
		ns := cluster.nodesWithClient(ctx, "registrar")
		if len(ns) != 1 {
			return fmt.Errorf("registrar connections on %d nodes", len(ns))
		}
		node = ns[0]
		return nil
	})
	if node == nil {
		nodeWhy = "the leader of " + stepsStream
		if st, err := js.Stream(ctx, stepsStream); err == nil {
			if info, err := st.Info(ctx); err == nil && info.Cluster != nil {
				node = cluster.node(info.Cluster.Leader)
			}
		}
	}
	if node == nil {
		node, nodeWhy = cluster.nodes[1], "by default"
	}
	led := leaderships(ctx, js, node.name, []string{commandsStream, eventsStream, dlqStream, stepsStream})
	node.kill()
	kills := 2
	t.Logf("%5.1fs  SIGKILL %s (pid %d, outbox lease holder %q) and NATS node %s (%s; leader of %v); %d registrations ended so far",
		killedAt.Seconds(), victim.name, victimPID, holder, node.name, nodeWhy, led, terminalAtKill)

	time.Sleep(restartRegistrar)
	victim.restartByTest()
	t.Logf("%5.1fs  %s started again (pid %d)", time.Since(start).Seconds(), victim.name, victim.pid())
	time.Sleep(restartNATS - restartRegistrar)
	node.start()
	t.Logf("%5.1fs  NATS node %s started again", time.Since(start).Seconds(), node.name)
	if err := cluster.waitHealthy(ctx, time.Minute); err != nil {
		t.Errorf("NATS cluster after the restart of %s: %v", node.name, err)
	} else {
		t.Logf("%5.1fs  NATS cluster healthy again", time.Since(start).Seconds())
	}
	// The supervisor starts the killed registrar again if its first
	// restart fails.
	if err := victim.waitReady(ctx, 2*time.Minute); err != nil {
		t.Errorf("after its restart: %v", err)
	} else {
		t.Logf("%5.1fs  %s ready again (pid %d)", time.Since(start).Seconds(), victim.name, victim.pid())
	}

	pub = <-published
	if pub.err != nil {
		t.Fatalf("publish: %v", pub.err)
	}
	t.Logf("%d commands published in %.1fs (%d failed publish attempts retried, %d acknowledged as duplicates)",
		registrations, pub.took.Seconds(), pub.failedAttempts, pub.duplicates)

	// Wait for every registration's terminal event.
	deadline := time.Now().Add(terminalTimeout)
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for {
		n, _ := watch.count()
		if n >= registrations {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after %v, %d of %d registrations have a terminal event", terminalTimeout, n, registrations)
			break
		}
		select {
		case <-watch.changed:
		case <-progress.C:
			t.Logf("%5.1fs  %d of %d registrations ended", time.Since(start).Seconds(), n, registrations)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	_, lastTerminal := watch.count()
	duration := lastTerminal.Sub(start)
	t.Logf("%5.1fs  the last terminal event arrived", duration.Seconds())

	// Let the stale redeliveries (messages the killed registrar held, acked
	// without effect by the survivors after AckWait) and the outbox drain.
	drainErr := waitUntil(ctx, 2*ackWait+30*time.Second, time.Second, func() error { return drained(ctx, js, pg) })
	if drainErr != nil {
		t.Errorf("not drained: %v", drainErr)
	} else {
		t.Logf("%5.1fs  drained: outbox empty, nothing pending or unacknowledged on any consumer, %s empty", time.Since(start).Seconds(), stepsStream)
	}
	// What the running incarnations counted (the killed one's counts died
	// with it).
	metric := func(name string, labels ...string) string {
		var parts []string
		for _, r := range regs {
			parts = append(parts, strconv.FormatFloat(r.metricSum(ctx, name, labels...), 'f', -1, 64))
		}
		return strings.Join(parts, " + ")
	}
	postsByStatus := map[int]int{}
	for _, rq := range sims.Resamania.Requests() {
		if rq.Method == "POST" && rq.Route == "/contacts" {
			postsByStatus[rq.Status]++
		}
	}

	// The verdict: a fresh read of the event and dead-letter streams, the
	// simulator's contacts and the store's flows.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	evMsgs, err := readStream(rctx, js, eventsStream)
	if err != nil {
		t.Fatal(err)
	}
	dlMsgs, err := readStream(rctx, js, dlqStream)
	if err != nil {
		t.Fatal(err)
	}
	v := verify(evMsgs, sims.Resamania.Contacts(acct.ClientToken)[seeded:], sims.Resamania.CountResponses("POST", "/contacts", 201))
	flows := flowStates(ctx, pg)

	// Exits the test did not cause: a start that failed (the supervisor
	// started the instance again) is reported; an instance that was ready
	// and then died is an error.
	var startFailures, crashes []string
	for _, r := range regs {
		sf, cr := r.exits()
		for _, e := range sf {
			startFailures = append(startFailures, r.name+" "+e)
		}
		for _, e := range cr {
			crashes = append(crashes, r.name+" "+e)
		}
	}

	reportTable(t, []row{
		{"registrations published", strconv.Itoa(registrations)},
		{"registrations with a terminal event", strconv.Itoa(v.withTerminal)},
		{"completed", strconv.Itoa(v.completed)},
		{"failed / rejected", fmt.Sprintf("%d / %d", v.failed, v.rejected)},
		{"duplicate terminal events", strconv.Itoa(v.duplicateTerminals)},
		{"duplicate event ids in the stream", strconv.Itoa(v.duplicateEventIDs)},
		{"events (total)", strconv.Itoa(len(evMsgs))},
		{"completed as created / found after a conflict", fmt.Sprintf("%d / %d", v.created, v.foundAfterConflict)},
		{"dead letters", strconv.Itoa(len(dlMsgs))},
		{"contacts created (POST /contacts 201)", strconv.Itoa(v.created201)},
		{"contacts at the simulator (new)", strconv.Itoa(v.contacts)},
		{"emails with more than one contact", strconv.Itoa(v.duplicateContacts)},
		{"POST /contacts by status (0: the caller was gone)", fmt.Sprint(postsByStatus)},
		{"flows in the store by status", flows},
		{"kills done (SIGKILL)", fmt.Sprintf("%d (%s, NATS %s at %.1fs)", kills, victim.name, node.name, killedAt.Seconds())},
		{"registrar starts that failed / crashes", fmt.Sprintf("%d / %d", len(startFailures), len(crashes))},
		{"publish attempts retried", strconv.Itoa(pub.failedAttempts)},
		{"duplicate commands (running instances a + b)", metric("registrar_commands_total", `result="duplicate"`)},
		{"stale step messages absorbed (a + b)", metric("registrar_step_messages_stale_total")},
		{"step retries (a + b)", metric("registrar_step_retries_total")},
		{"outbox publish failures (a + b)", metric("registrar_outbox_publish_failures_total")},
		{"registrations ended before the kills", strconv.Itoa(terminalAtKill)},
		{"duration (first publish → last terminal event)", duration.Round(10 * time.Millisecond).String()},
		{"registrar NATS reconnections (log lines)", strconv.Itoa(countReconnects(regs))},
	})

	// Assertions.
	for _, e := range startFailures {
		t.Logf("registrar start failed (restarted by the supervisor): %s", e)
	}
	for _, e := range crashes {
		t.Errorf("registrar crashed: %s", e)
	}
	for _, p := range v.problems {
		t.Error(p)
	}
	if v.withTerminal != registrations || v.completed != registrations {
		t.Errorf("%d registrations with a terminal event, %d completed; want %d of each", v.withTerminal, v.completed, registrations)
	}
	if v.duplicateTerminals != 0 {
		t.Errorf("%d duplicate terminal events", v.duplicateTerminals)
	}
	if v.duplicateEventIDs != 0 {
		t.Errorf("%d event ids appear more than once in %s", v.duplicateEventIDs, eventsStream)
	}
	if len(dlMsgs) != 0 {
		t.Errorf("%d dead letters; none expected", len(dlMsgs))
		for i, m := range dlMsgs {
			if i == 20 {
				t.Logf("… %d more", len(dlMsgs)-20)
				break
			}
			h := m.Headers()
			t.Logf("dead letter: registration %s handler %s code %s deliveries %s: %s", h.Get("Registrar-Registration-Id"),
				h.Get("Registrar-Handler"), h.Get("Registrar-Error-Code"), h.Get("Registrar-Deliveries"), h.Get("Registrar-Reason"))
		}
	}
	if v.created201 != registrations || v.contacts != registrations || v.duplicateContacts != 0 {
		t.Errorf("vendor effects: %d contacts created (201), %d new contacts, %d emails with several; want %d, %d, 0",
			v.created201, v.contacts, v.duplicateContacts, registrations, registrations)
	}
	if t.Failed() {
		logStuckFlows(t, ctx, pg)
	}
}

// registerBody is the n-th registration: a new person (distinct e-mail) in
// one of the account's clubs.
func registerBody(acct resamania.SimAccount, n int) []byte {
	club := acct.Clubs[n%len(acct.Clubs)]
	return fmt.Appendf(nil, `{"registrationId":%q,"tenant":"acme","clubId":%q,"networkNodeId":%q,
		"contact":{"email":%q,"givenName":"Ada","familyName":"Lovelace","birthDate":"1995-12-10"}}`,
		registrationID(n), resamania.ClubIRI(acct.ClientToken, club.ID), resamania.NetworkNodeIRI(acct.ClientToken, club.NetworkNodeID), email(n))
}

func registrationID(n int) string { return fmt.Sprintf("scaleout-%04d", n) }
func email(n int) string          { return fmt.Sprintf("scaleout-%04d@example.com", n) }

// holderPID is the process id in a lease holder ("host-pid-random").
func holderPID(holder string) int {
	parts := strings.Split(holder, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// drained says whether the outbox is empty and every durable consumer has
// nothing pending or unacknowledged (the step stream, a work queue, then
// holds nothing).
func drained(ctx context.Context, js jetstream.JetStream, pg *pgx.Conn) error {
	var outbox int
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil {
		return err
	}
	if outbox != 0 {
		return fmt.Errorf("%d outbox rows", outbox)
	}
	var busy []string
	for _, stream := range []string{commandsStream, stepsStream} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.NumRedelivered != 0 {
				busy = append(busy, fmt.Sprintf("%s/%s pending %d ack-pending %d redelivered %d", stream, ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered))
			}
		}
		if err := lister.Err(); err != nil {
			return err
		}
	}
	if len(busy) > 0 {
		return errors.New(strings.Join(busy, "; "))
	}
	s, err := js.Stream(ctx, stepsStream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != 0 {
		return fmt.Errorf("%s holds %d messages", stepsStream, info.State.Msgs)
	}
	return nil
}

// verdict is what the streams and the simulator say.
type verdict struct {
	withTerminal, completed, failed, rejected int
	duplicateTerminals, duplicateEventIDs     int
	created, foundAfterConflict               int // completed results: created by the flow, or found
	created201, contacts, duplicateContacts   int
	problems                                  []string
}

func verify(evMsgs []jetstream.Msg, contacts []resamania.Contact, created201 int) verdict {
	var v verdict
	byReg := map[string][]event{}
	ids := map[string]int{}
	for _, m := range evMsgs {
		e := decodeEvent(m)
		byReg[e.RegistrationID] = append(byReg[e.RegistrationID], e)
		ids[e.EventID]++
	}
	for _, n := range ids {
		if n > 1 {
			v.duplicateEventIDs += n - 1
		}
	}
	contactOf := map[string][]resamania.Contact{}
	for _, c := range contacts {
		contactOf[c.Email] = append(contactOf[c.Email], c)
	}
	v.contacts = len(contacts)
	v.created201 = created201
	for _, cs := range contactOf {
		if len(cs) > 1 {
			v.duplicateContacts++
		}
	}
	problem := func(format string, args ...any) {
		if len(v.problems) < 30 {
			v.problems = append(v.problems, fmt.Sprintf(format, args...))
		}
	}
	for n := range registrations {
		id := registrationID(n)
		evs := byReg[id]
		var terms []event
		for _, e := range evs {
			if isTerminal(e.Type) {
				terms = append(terms, e)
			}
		}
		if len(terms) == 0 {
			problem("%s: no terminal event (events: %s)", id, typesOf(evs))
			continue
		}
		v.withTerminal++
		if len(terms) > 1 {
			v.duplicateTerminals += len(terms) - 1
			problem("%s: %d terminal events: %s", id, len(terms), typesOf(evs))
		}
		t := terms[0]
		switch t.Type {
		case "completed":
			v.completed++
		case "failed":
			v.failed++
			code, msg := "", ""
			if t.Error != nil {
				code, msg = t.Error.Code, t.Error.Message
			}
			problem("%s: failed %s: %s", id, code, msg)
			continue
		default:
			v.rejected++
			problem("%s: %s", id, t.Type)
			continue
		}
		// A new person: the contact is created (or, when a creation
		// landed before a crash, found after the conflict), then the flow
		// completes; nothing else, in that order.
		want := []string{"resamania.contact_created", "completed"}
		if t.Result != nil && !t.Result.Created {
			want = []string{"resamania.contact_found", "completed"}
			v.foundAfterConflict++
		} else {
			v.created++
		}
		if got := typesOf(evs); got != strings.Join(want, ",") {
			problem("%s: events %s, want %s", id, got, strings.Join(want, ","))
		}
		cs := contactOf[email(n)]
		switch {
		case len(cs) != 1:
			problem("%s: %d contacts for %s at the simulator", id, len(cs), email(n))
		case t.Result == nil || t.Result.ContactID != cs[0].ID:
			problem("%s: completed with a contact other than the simulator's %s", id, cs[0].ID)
		}
	}
	return v
}

func typesOf(evs []event) string {
	ts := make([]string, len(evs))
	for i, e := range evs {
		ts[i] = e.Type
	}
	return strings.Join(ts, ",")
}

// flowStates counts the store's flows by status.
func flowStates(ctx context.Context, pg *pgx.Conn) string {
	rows, err := pg.Query(ctx, `SELECT status, count(*) FROM flows GROUP BY status ORDER BY status`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s %d", st, n))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// logStuckFlows logs the flows that did not end, for a failed run.
func logStuckFlows(t *testing.T, ctx context.Context, pg *pgx.Conn) {
	rows, err := pg.Query(ctx, `SELECT registration_id, status, step, seq, version, updated_at FROM flows
		WHERE status NOT IN ('completed', 'failed') ORDER BY registration_id LIMIT 30`)
	if err != nil {
		t.Logf("stuck flows: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, st, step string
		var seq, version int64
		var at time.Time
		if err := rows.Scan(&id, &st, &step, &seq, &version, &at); err != nil {
			t.Logf("stuck flows: %v", err)
			return
		}
		t.Logf("flow not ended: %s %s at %s seq %d version %d updated %s", id, st, step, seq, version, at.Format(time.RFC3339Nano))
	}
	var ledger, flows int
	_ = pg.QueryRow(ctx, `SELECT count(*) FROM ledger`).Scan(&ledger)
	_ = pg.QueryRow(ctx, `SELECT count(*) FROM flows`).Scan(&flows)
	t.Logf("store: %d ledger claims, %d flows", ledger, flows)
}

// countReconnects counts the registrars' "nats reconnected" log lines.
func countReconnects(regs []*registrar) int {
	n := 0
	for _, r := range regs {
		r.mu.Lock()
		logs := append([]string(nil), r.logs...)
		r.mu.Unlock()
		for _, l := range logs {
			n += countInFile(l, "nats reconnected")
		}
	}
	return n
}

type row struct{ k, v string }

// reportTable logs the figures as a two-column table.
func reportTable(t *testing.T, rows []row) {
	w := 0
	for _, r := range rows {
		w = max(w, len([]rune(r.k)))
	}
	var b strings.Builder
	b.WriteString("scale-out figures:\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-*s  %s\n", w, r.k, r.v)
	}
	t.Log(b.String())
}
