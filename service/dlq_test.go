package service_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/vendors/fault"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// registrarBinary builds the registrar command once per test run: the
// operators' tooling is tested as they run it.
func registrarBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "registrar-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "registrar")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/registrar").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cli runs `registrar args…` against the service's NATS server.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.run(append(args, "--nats", e.svc.NATSURL())...)
}

// run runs the registrar command with args, without a configuration file.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(registrarBinary(e.t), args...)
	cmd.Env = append(os.Environ(), "REGISTRAR_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run registrar %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestDeadLettersOfAnOutageAreReplayedByGroupAtARate: the Resamania
// simulator is down longer than the retry budget and the parking allowed:
// the registrations become dead letters, all in one group. After the
// recovery two operators replay that group at once with `registrar dlq
// replay --group … --rate 20`: every registration completes once, the
// replays go out at the requested rate, and nothing is replayed twice.
func TestDeadLettersOfAnOutageAreReplayedByGroupAtARate(t *testing.T) {
	e := startEnv(t, withRetryBudget(300*time.Millisecond), withBreaker(200*time.Millisecond, 500*time.Millisecond, 300*time.Millisecond))
	sim := e.sims.Resamania
	sim.Faults().Set(fault.Config{ErrorRate: 1})
	const n = 30
	for i := range n {
		publish(t, e.js, registerSubject, "", e.register(fmt.Sprintf("dl-%02d", i), "acme", fmt.Sprintf("dl%02d@example.com", i), ""))
	}
	e.dlq.waitFor(t, "a dead letter per registration", 60*time.Second, func(ms []received) bool { return len(ms) >= n })
	time.Sleep(300 * time.Millisecond)
	if got := len(e.dlq.all()); got != n {
		t.Fatalf("dead letters = %d, want %d", got, n)
	}

	out, stderr, code := e.cli("dlq", "ls")
	t.Logf("registrar dlq ls:\n%s", out)
	if code != 0 {
		t.Fatalf("dlq ls: exit %d: %s", code, stderr)
	}
	out, _, _ = e.cli("dlq", "ls", "--json")
	var groups []struct {
		ID, Flow, Handler, Code string
		Count                   int
	}
	mustUnmarshal(t, []byte(out), &groups)
	if len(groups) != 1 || groups[0].Count != n || groups[0].Flow != events.CmdResamaniaRegister ||
		groups[0].Handler != "resamania-lookup" || groups[0].Code != handlers.DLQVendorUnavailable {
		t.Fatalf("groups = %+v, want one group of %d", groups, n)
	}
	group := groups[0].ID
	if out, _, _ := e.cli("dlq", "ls", "--all"); true {
		lines := strings.SplitN(out, "\n", 4)
		t.Logf("registrar dlq ls --all (first lines):\n%s", strings.Join(lines[:min(3, len(lines))], "\n"))
	}
	if out, _, _ := e.cli("dlq", "ls", "--all", "--json"); true {
		var items []struct {
			ID uint64 `json:"id"`
		}
		mustUnmarshal(t, []byte(out), &items)
		show, _, _ := e.cli("dlq", "show", strconv.FormatUint(items[0].ID, 10))
		t.Logf("registrar dlq show %d:\n%s", items[0].ID, show)
	}
	if out, _, _ := e.cli("dlq", "replay", "--group", group, "--dry-run"); true {
		lines := strings.SplitN(out, "\n", 4)
		t.Logf("registrar dlq replay --group %s --dry-run (first lines):\n%s", group, strings.Join(lines[:min(3, len(lines))], "\n"))
	}

	// The vendor is back. Record when the replayed step messages go out.
	sim.Faults().Set(fault.Config{})
	var mu sync.Mutex
	var replayedAt []time.Time
	seen := map[string]bool{}
	sub, err := e.nc.Subscribe(handlers.StepSubjectPrefix+">", func(m *nats.Msg) {
		// Both operators publish each replay (the stream keeps one: same
		// Nats-Msg-Id); the first publication of each counts.
		id := m.Header.Get(nats.MsgIdHdr)
		if m.Header.Get(handlers.HeaderReplayOf) == "" || id == "" {
			return
		}
		mu.Lock()
		if !seen[id] {
			seen[id] = true
			replayedAt = append(replayedAt, time.Now())
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	const rate = 20.0
	type run struct {
		out, err string
		code     int
	}
	runs := make([]run, 2)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(150 * time.Millisecond) // a second operator, a moment later
			}
			o, se, c := e.cli("dlq", "replay", "--group", group, "--rate", strconv.FormatFloat(rate, 'f', -1, 64))
			runs[i] = run{o, se, c}
		}()
	}
	wg.Wait()
	summary := regexp.MustCompile(`replayed (\d+), already replayed (\d+), failed (\d+)`)
	replayed, already := 0, 0
	for i, r := range runs {
		t.Logf("operator %d: registrar dlq replay --group %s --rate %v:\n%s", i+1, group, rate, r.out)
		m := summary.FindStringSubmatch(r.out)
		if r.code != 0 || m == nil || m[3] != "0" {
			t.Fatalf("replay %d: exit %d, stdout %q, stderr %q", i+1, r.code, r.out, r.err)
		}
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		replayed += a
		already += b
	}
	if replayed != n {
		t.Errorf("replayed %d in all, want %d (each dead letter once); already replayed %d", replayed, n, already)
	}

	// Every registration completes, once.
	e.events.waitFor(t, "every registration completed", 30*time.Second, func(ms []received) bool {
		done := 0
		for _, m := range ms {
			if m.Event.Type == "completed" && strings.HasPrefix(m.Event.RegistrationID, "dl-") {
				done++
			}
		}
		return done >= n
	})
	time.Sleep(300 * time.Millisecond)
	terminal := map[string]int{}
	for _, m := range e.events.all() {
		if isTerminal(m.Event.Type) {
			terminal[m.Event.RegistrationID]++
		}
	}
	for i := range n {
		if id := fmt.Sprintf("dl-%02d", i); terminal[id] != 1 {
			t.Errorf("%s: %d terminal events", id, terminal[id])
		}
	}
	if c := e.contactCreations(); c != n {
		t.Errorf("contacts created = %d, want %d", c, n)
	}
	if extra := len(e.dlq.all()) - n; extra != 0 {
		t.Errorf("%d new dead letters after the replay", extra)
	}
	// Nothing is left to replay, and a third replay finds nothing.
	if out, _, _ := e.cli("dlq", "ls"); !strings.Contains(out, "no dead letters") {
		t.Errorf("after the replay, dlq ls: %s", out)
	}

	// The rate, from the times the replayed messages went out.
	mu.Lock()
	times := slices.Clone(replayedAt)
	mu.Unlock()
	if len(times) != n {
		t.Fatalf("saw %d distinct replayed step messages, want %d", len(times), n)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	span := times[len(times)-1].Sub(times[0]).Seconds()
	got := float64(len(times)-1) / span
	t.Logf("%d replays in %.2fs: %.1f/s (requested %v/s)", len(times), span, got, rate)
	if got > rate*1.3 || got < rate*0.5 {
		t.Errorf("replay rate %.1f/s, want about %v/s", got, rate)
	}
	if v := metricValue(t, e, `registrar_replayed_messages_total{handler="resamania-lookup",kind="replay"}`); v < n {
		t.Errorf("replayed messages metric = %v, want ≥ %d", v, n)
	}
}

// TestDeadLetterEditFixesARejectedCommand: a command with a malformed
// field is rejected and kept as a dead letter; `registrar dlq edit --set`
// fixes the field, the edited command is validated and replayed, and the
// flow completes.
func TestDeadLetterEditFixesARejectedCommand(t *testing.T) {
	e := startEnv(t)
	body := strings.Replace(string(e.register("edit-1", "acme", "edit@example.com", "")), `"birthDate":"1995-12-10"`, `"birthDate":"10/12/1995"`, 1)
	if !strings.Contains(body, "10/12/1995") {
		t.Fatalf("the test's command has no birthDate to break: %s", body)
	}
	publish(t, e.js, registerSubject, "", []byte(body))
	evs := e.terminal("edit-1")
	if evs[0].Event.Type != "rejected" || evs[0].Event.Errors[0].Field != "contact.birthDate" {
		t.Fatalf("events = %v %s", types(evs), evs[0].Data)
	}
	dls := e.dlq.waitFor(t, "the rejected command kept", 10*time.Second, func(ms []received) bool { return len(ms) > 0 })
	out, _, _ := e.cli("dlq", "ls", "--all", "--json")
	var items []struct {
		ID   uint64 `json:"id"`
		Code string `json:"code"`
	}
	mustUnmarshal(t, []byte(out), &items)
	if len(items) != 1 || items[0].Code != handlers.DLQRejected || dls[0].Header.Get(handlers.HeaderRegistrationID) != "edit-1" {
		t.Fatalf("dead letters: %s", out)
	}
	id := strconv.FormatUint(items[0].ID, 10)

	// A correction that is still wrong is refused and publishes nothing.
	out, stderr, code := e.cli("dlq", "edit", id, "--set", "contact.birthDate=1995-13-45")
	if code != 1 || !strings.Contains(out+stderr, "contact.birthDate") {
		t.Fatalf("edit with a bad date: exit %d, %s %s", code, out, stderr)
	}
	out, stderr, code = e.cli("dlq", "edit", id, "--set", "contact.birthDate=1995-12-10")
	t.Logf("registrar dlq edit %s --set contact.birthDate=1995-12-10:\n%s", id, out)
	if code != 0 {
		t.Fatalf("edit: exit %d, %s %s", code, out, stderr)
	}
	evs = e.ended("edit-1")
	if got := types(evs); !slices.Equal(got, []string{"rejected", "resamania.contact_created", "completed"}) {
		t.Fatalf("events = %v", got)
	}
	var c struct {
		Contact events.ResamaniaContact `json:"contact"`
	}
	mustUnmarshal(t, evs[1].Data, &c)
	if c.Contact.BirthDate != "1995-12-10" {
		t.Errorf("created contact = %+v", c.Contact)
	}
	// The original dead letter is kept until purged.
	out, stderr, code = e.cli("dlq", "purge", id, "--yes")
	if code != 0 || len(e.sims.Resamania.Requests()) == 0 {
		t.Fatalf("purge: exit %d %s %s", code, out, stderr)
	}
	if out, _, _ := e.cli("dlq", "ls"); !strings.Contains(out, "no dead letters") {
		t.Errorf("after purge, dlq ls: %s", out)
	}
}

// TestReplayOfACompletedFlowsCommandChangesNothing: a dead letter of a
// command whose flow has since completed (here written by hand, as a
// handler would have) is replayed: the ledger recognises the command, no
// vendor is called and no event is emitted.
func TestReplayOfACompletedFlowsCommandChangesNothing(t *testing.T) {
	e := startEnv(t)
	body := e.register("replay-done", "acme", "done@example.com", "")
	publish(t, e.js, registerSubject, "cmd-replay-done", body)
	e.terminal("replay-done")
	before := len(e.events.of("replay-done"))
	requests := len(e.sims.Resamania.Requests())

	m := nats.NewMsg(events.DeadLetterSubjectPrefix + handlers.IntakeName)
	m.Data = body
	for k, v := range map[string]string{
		nats.MsgIdHdr:                  "dlq:test-replay-done",
		handlers.HeaderOriginalSubject: registerSubject,
		handlers.HeaderOriginalMsgID:   "cmd-replay-done",
		handlers.HeaderHandler:         handlers.IntakeName,
		handlers.HeaderErrorCode:       handlers.DLQInternal,
		handlers.HeaderReason:          "the store was unreachable (a test)",
		handlers.HeaderRegistrationID:  "replay-done",
		handlers.HeaderFlow:            events.CmdResamaniaRegister,
	} {
		m.Header.Set(k, v)
	}
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := e.cli("dlq", "replay", "--filter", "registration=replay-done")
	if code != 0 || !strings.Contains(out, "replayed 1,") {
		t.Fatalf("replay: exit %d %s %s", code, out, stderr)
	}
	waitUntil(t, "the replay to be handled", 10*time.Second, func() bool {
		return metricValue(t, e, `registrar_replayed_messages_total{handler="intake",kind="replay"}`) >= 1
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(e.events.of("replay-done")); n != before {
		t.Errorf("events after the replay: %v", types(e.events.of("replay-done")))
	}
	if n := len(e.sims.Resamania.Requests()); n != requests {
		t.Errorf("vendor requests after the replay: %d, before %d", n, requests)
	}
	if v := metricValue(t, e, `registrar_commands_total{command="resamania.register",result="duplicate"}`); v != 1 {
		t.Errorf("duplicate commands = %v, want 1", v)
	}
}
