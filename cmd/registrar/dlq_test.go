package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/dlq"
	"github.com/registrar-dev/registrar/handlers"
	"github.com/registrar-dev/registrar/transport"
	"github.com/registrar-dev/registrar/transport/natstest"
)

// dlqEnv is an embedded NATS server with registrar's streams, for the dlq
// command.
type dlqEnv struct {
	url  string
	js   jetstream.JetStream
	topo transport.Topology
	dir  string
	n    int
}

func newDLQEnv(t *testing.T) *dlqEnv {
	t.Helper()
	t.Setenv("REGISTRAR_CONFIG", "")
	n := natstest.Start(t)
	return &dlqEnv{url: n.URL, js: n.JS, topo: n.Topo, dir: t.TempDir()}
}

// deadLetter publishes a dead letter as the handlers' runtime writes it and
// returns its sequence. fields are header values by name (the
// dead-letter headers' short names: subject, handler, flow, code, reg,
// tenant, reason; others are taken as header names).
func (e *dlqEnv) deadLetter(t *testing.T, body string, fields map[string]string) uint64 {
	t.Helper()
	e.n++
	short := map[string]string{
		"subject": handlers.HeaderOriginalSubject, "handler": handlers.HeaderHandler, "flow": handlers.HeaderFlow,
		"code": handlers.HeaderErrorCode, "reg": handlers.HeaderRegistrationID, "tenant": handlers.HeaderTenant,
		"reason": handlers.HeaderReason,
	}
	now := time.Now().UTC()
	h := nats.Header{}
	h.Set(handlers.HeaderOriginalMsgID, "orig-"+strconv.Itoa(e.n))
	h.Set(handlers.HeaderAttempts, "5")
	h.Set(handlers.HeaderDeliveries, "6")
	h.Set(handlers.HeaderFirstFailure, now.Add(-time.Minute).Format(time.RFC3339Nano))
	h.Set(handlers.HeaderLastFailure, now.Format(time.RFC3339Nano))
	h.Set(handlers.HeaderDeadLetteredAt, now.Format(time.RFC3339Nano))
	h.Set(nats.MsgIdHdr, "dlq:orig-"+strconv.Itoa(e.n))
	for k, v := range fields {
		if long, ok := short[k]; ok {
			k = long
		}
		h.Set(k, v)
	}
	m := nats.NewMsg("registration.dlq." + h.Get(handlers.HeaderHandler))
	m.Header = h
	m.Data = []byte(body)
	ack, err := e.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (e *dlqEnv) count(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// config writes a configuration file naming the server and tenant acme.
func (e *dlqEnv) config(t *testing.T) string {
	t.Helper()
	yaml := fmt.Sprintf(`nats:
  url: %s
tenants:
  acme:
    resamania:
      baseURL: http://127.0.0.1:1/demoapi
      clientToken: demoapi
      clientId: id
      clientSecret: secret
      apiKey: key
`, e.url)
	path := filepath.Join(e.dir, "registrar.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dlqRun runs `registrar dlq args...` with the server's URL.
func (e *dlqEnv) run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runDLQArgs(t, stdin, append(args, "--nats", e.url)...)
}

func runDLQArgs(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runContext(t.Context(), append([]string{"dlq"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDLQUsage(t *testing.T) {
	t.Setenv("REGISTRAR_CONFIG", "")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "no NATS URL", args: []string{"ls"}, code: 2, stderr: "no NATS URL: give --nats URL, or --config FILE"},
		{name: "no NATS URL for replay", args: []string{"replay", "--all"}, code: 2, stderr: "no NATS URL"},
		{name: "no command", args: nil, code: 2, stderr: "usage: registrar dlq COMMAND"},
		{name: "help", args: []string{"help"}, code: 0, stdout: "replay  (ID... | --group G"},
		{name: "unknown command", args: []string{"frob"}, code: 2, stderr: `unknown command "frob"`},
		{name: "replay without selection", args: []string{"replay", "--nats", "nats://127.0.0.1:1"}, code: 2, stderr: "exactly one of: IDs, --group, --filter, --all"},
		{name: "replay two selections", args: []string{"replay", "3", "--all"}, code: 2, stderr: "exactly one of"},
		{name: "replay bad id", args: []string{"replay", "x7"}, code: 2, stderr: `"x7" is not a dead letter ID`},
		{name: "replay bad filter key", args: []string{"replay", "--filter", "colour=red"}, code: 2, stderr: `filter key "colour"`},
		{name: "replay bad rate", args: []string{"replay", "--all", "--rate", "0"}, code: 2, stderr: "--rate must be more than 0"},
		{name: "purge without selection", args: []string{"purge", "--yes"}, code: 2, stderr: "exactly one of"},
		{name: "show without id", args: []string{"show"}, code: 2, stderr: "want one dead letter ID"},
		{name: "edit two ids", args: []string{"edit", "1", "2"}, code: 2, stderr: "want one dead letter ID"},
		{name: "ls bad since", args: []string{"ls", "--since", "soon"}, code: 2, stderr: `since "soon"`},
		{name: "ls unknown flag", args: []string{"ls", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{name: "ls --help", args: []string{"ls", "--help"}, code: 0, stderr: "-registration"},
		{name: "missing config file", args: []string{"ls", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, code: 1, stderr: "read config"},
		{name: "no server", args: []string{"ls", "--nats", "nats://" + freeAddr(t)}, code: 1, stderr: "connect nats://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runDLQArgs(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stdout %q does not contain %q or stderr %q does not contain %q", stdout, tt.stdout, stderr, tt.stderr)
			}
		})
	}
	// The main help names the command.
	var out bytes.Buffer
	runContext(t.Context(), []string{"help"}, strings.NewReader(""), &out, &out)
	if !strings.Contains(out.String(), "registrar dlq ") {
		t.Errorf("help does not name dlq:\n%s", &out)
	}
}

func TestDLQNoStream(t *testing.T) {
	t.Setenv("REGISTRAR_CONFIG", "")
	ns := startNATS(t)
	code, _, stderr := runDLQArgs(t, "", "ls", "--nats", ns.ClientURL())
	if code != 1 || !strings.Contains(stderr, "stream REGISTRATION_DLQ not found") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

const lookupStep = "registrar.step.resamania.lookup"

// invalidRegister is a resamania.register command with an invalid clubId.
func invalidRegister(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "testdata", "resamania.register.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["registrationId"] = id
	m["clubId"] = "club 123"
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestDLQ(t *testing.T) {
	e := newDLQEnv(t)
	registerSubject := "registration.cmd.resamania.register"

	t.Run("ls empty", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "ls")
		if code != 0 || strings.TrimSpace(stdout) != "no dead letters" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	// Four step dead letters of one cause, two rejected commands of another.
	var steps, rejected []uint64
	for i := range 4 {
		reg := "reg-step-" + strconv.Itoa(i)
		steps = append(steps, e.deadLetter(t, fmt.Sprintf(`{"registrationId":%q,"flow":"resamania.register","step":"resamania.lookup","seq":1}`, reg),
			map[string]string{"subject": lookupStep, "handler": "resamania.lookup", "flow": "resamania.register", "code": "vendor_unavailable",
				"reg": reg, "tenant": "acme", "reason": "resamania: 503 Service Unavailable (attempt " + strconv.Itoa(i) + ")"}))
	}
	for i := range 2 {
		reg := "reg-cmd-" + strconv.Itoa(i)
		rejected = append(rejected, e.deadLetter(t, invalidRegister(t, reg),
			map[string]string{"subject": registerSubject, "handler": "intake", "flow": "resamania.register", "code": "rejected",
				"reg": reg, "tenant": "acme", "reason": "invalid resamania.register command: clubId: must be an IRI",
				"Authorization": "Bearer very-secret", "X-Api-Key": "k-123", "X-Trace": "trace-" + strconv.Itoa(i)}))
	}
	stepGroup := dlq.DeadLetter{Flow: "resamania.register", Handler: "resamania.lookup", Code: "vendor_unavailable"}.Group()
	rejectedGroup := dlq.DeadLetter{Flow: "resamania.register", Handler: "intake", Code: "rejected"}.Group()

	t.Run("ls groups", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "ls")
		if code != 0 {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 4 {
			t.Fatalf("stdout:\n%s", stdout)
		}
		if f := strings.Fields(lines[0]); strings.Join(f, " ") != "GROUP FLOW HANDLER CODE COUNT FIRST LAST REASON" {
			t.Errorf("header %q", lines[0])
		}
		if f := strings.Fields(lines[1]); f[0] != stepGroup || f[1] != "resamania.register" || f[2] != "resamania.lookup" || f[3] != "vendor_unavailable" ||
			f[4] != "4" || !strings.Contains(lines[1], "(attempt 3)") {
			t.Errorf("first group %q", lines[1])
		}
		if f := strings.Fields(lines[2]); f[0] != rejectedGroup || f[2] != "intake" || f[4] != "2" {
			t.Errorf("second group %q", lines[2])
		}
		if lines[3] != "6 dead letters in 2 groups" {
			t.Errorf("last line %q", lines[3])
		}
	})

	t.Run("ls --json", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "ls", "--json")
		if code != 0 {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		var groups []dlq.GroupSummary
		if err := json.Unmarshal([]byte(stdout), &groups); err != nil {
			t.Fatalf("%v:\n%s", err, stdout)
		}
		if len(groups) != 2 || groups[0].ID != stepGroup || groups[0].Count != 4 || groups[1].ID != rejectedGroup || groups[1].Count != 2 ||
			groups[0].First.IsZero() || groups[0].Last.Before(groups[0].First) || !strings.Contains(groups[0].Reason, "503") {
			t.Errorf("groups %+v", groups)
		}
	})

	t.Run("ls --all and filters", func(t *testing.T) {
		code, stdout, _ := e.run(t, "", "ls", "--all", "--flow", "resamania.register", "--code", "rejected")
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "ID TIME FLOW HANDLER CODE REGISTRATION REASON" {
			t.Fatalf("exit %d, stdout:\n%s", code, stdout)
		}
		if f := strings.Fields(lines[1]); f[0] != strconv.FormatUint(rejected[0], 10) || f[5] != "reg-cmd-0" {
			t.Errorf("line %q", lines[1])
		}
		code, stdout, _ = e.run(t, "", "ls", "--all", "--json", "--registration", "reg-step-2")
		var items []map[string]any
		if err := json.Unmarshal([]byte(stdout), &items); code != 0 || err != nil || len(items) != 1 {
			t.Fatalf("exit %d, %v, stdout:\n%s", code, err, stdout)
		}
		if items[0]["id"] != float64(steps[2]) || items[0]["group"] != stepGroup || items[0]["originalSubject"] != lookupStep {
			t.Errorf("item %v", items[0])
		}
		code, stdout, _ = e.run(t, "", "ls", "--tenant", "nobody")
		if code != 0 || !strings.Contains(stdout, "no dead letters") {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
		code, stdout, _ = e.run(t, "", "ls", "--since", "1h", "--group", rejectedGroup)
		if code != 0 || !strings.Contains(stdout, "2 dead letters in 1 group") {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})

	t.Run("show", func(t *testing.T) {
		id := strconv.FormatUint(rejected[0], 10)
		code, stdout, stderr := e.run(t, "", "show", id)
		if code != 0 {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		for _, want := range []string{
			"subject:           registration.dlq.intake",
			"original subject:  " + registerSubject,
			"attempts:          5",
			"deliveries:        6",
			"first failure:",
			"last failure:",
			"dead-lettered at:",
			"reason:\n  invalid resamania.register command: clubId: must be an IRI",
			"  Authorization: [redacted]",
			"  X-Api-Key: [redacted]",
			"  X-Trace: trace-0",
			"  " + handlers.HeaderErrorCode + ": rejected",
			"\n    \"clubId\": \"club 123\",",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("show does not contain %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, "very-secret") || strings.Contains(stdout, "k-123") {
			t.Errorf("show prints a secret header:\n%s", stdout)
		}
		// Headers are sorted.
		if strings.Index(stdout, "  Authorization:") > strings.Index(stdout, "  Nats-Msg-Id:") ||
			strings.Index(stdout, "  Nats-Msg-Id:") > strings.Index(stdout, "  X-Trace:") {
			t.Errorf("headers not sorted:\n%s", stdout)
		}

		code, stdout, _ = e.run(t, "", "show", "--json", id)
		var j struct {
			ID      uint64
			Headers map[string][]string
			Body    map[string]any
		}
		if err := json.Unmarshal([]byte(stdout), &j); code != 0 || err != nil {
			t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
		}
		if j.ID != rejected[0] || j.Headers["Authorization"][0] != "[redacted]" || j.Body["registrationId"] != "reg-cmd-0" {
			t.Errorf("show --json %+v", j)
		}

		code, _, stderr = e.run(t, "", "show", "999")
		if code != 1 || !strings.Contains(stderr, "no dead letter 999 in stream REGISTRATION_DLQ") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("show a body that is not JSON", func(t *testing.T) {
		seq := e.deadLetter(t, "not json \x00 at all", map[string]string{"subject": lookupStep, "handler": "resamania.lookup", "code": "poison"})
		defer e.run(t, "", "purge", "--yes", strconv.FormatUint(seq, 10))
		code, stdout, _ := e.run(t, "", "show", strconv.FormatUint(seq, 10))
		if code != 0 || !strings.Contains(stdout, `"not json \x00 at all"`) {
			t.Errorf("exit %d, stdout:\n%s", code, stdout)
		}
	})

	t.Run("replay --dry-run", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "replay", "--group", stepGroup, "--dry-run")
		if code != 0 || !strings.Contains(stdout, "would replay 4 dead letters") || !strings.Contains(stdout, lookupStep) || !strings.Contains(stdout, "reg-step-3") {
			t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
		}
		if n := e.count(t, e.topo.Steps); n != 0 {
			t.Errorf("dry run published %d step messages", n)
		}
	})

	t.Run("replay --group", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "replay", "--group", stepGroup, "--rate", "40")
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if !regexp.MustCompile(`^replayed 4, already replayed 0, failed 0 \(\d+\.\d/s\)\n$`).MatchString(stdout) {
			t.Errorf("stdout %q", stdout)
		}
		if !regexp.MustCompile(`\r\[##########\] 4/4  \d+\.\d/s\n$`).MatchString(stderr) || !strings.Contains(stderr, "\r[#####-----] 2/4  ") {
			t.Errorf("progress %q", stderr)
		}
		if n := e.count(t, e.topo.Steps); n != 4 {
			t.Errorf("steps stream holds %d messages, want 4", n)
		}
		if n := e.count(t, e.topo.DeadLetters); n != 2 {
			t.Errorf("%d dead letters left, want 2", n)
		}
		// Replayed already: the IDs are gone.
		code, _, stderr = e.run(t, "", "replay", strconv.FormatUint(steps[0], 10))
		if code != 1 || !strings.Contains(stderr, fmt.Sprintf("no dead letter %d (already replayed or purged?); nothing replayed", steps[0])) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("replay failure", func(t *testing.T) {
		seq := e.deadLetter(t, `{"x":1}`, map[string]string{"subject": "nowhere.subject", "handler": "h", "code": "internal"})
		code, stdout, stderr := e.run(t, "", "replay", strconv.FormatUint(seq, 10))
		if code != 1 || !strings.HasPrefix(stdout, "replayed 0, already replayed 0, failed 1 (") ||
			!strings.Contains(stderr, fmt.Sprintf("dead letter %d: failed: publish to nowhere.subject", seq)) {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		code, stdout, _ = e.run(t, "", "purge", "--yes", strconv.FormatUint(seq, 10))
		if code != 0 || stdout != "purged 1 dead letter\n" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})

	id0, id1 := strconv.FormatUint(rejected[0], 10), strconv.FormatUint(rejected[1], 10)
	cfg := e.config(t)

	t.Run("edit --set still invalid", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "", "edit", id0, "--set", "contact.email=john@example.com")
		if code != 1 || !strings.Contains(stderr, "not a valid resamania.register command:\n  clubId: ") ||
			!strings.Contains(stderr, "nothing replayed") || strings.Contains(stdout, "replayed edited") {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		// An unknown tenant, with the configuration's tenants.
		code, _, stderr = runDLQArgs(t, "", "edit", id0, "--config", cfg, "--set", "clubId=/demoapi/clubs/123", "--set", "tenant=ghost")
		if code != 1 || !strings.Contains(stderr, `  tenant: unknown tenant "ghost"`) {
			t.Errorf("exit %d, stderr %s", code, stderr)
		}
		// Without a configuration file any tenant goes (dry run).
		code, stdout, stderr = e.run(t, "", "edit", id0, "--set", "clubId=/demoapi/clubs/123", "--set", "tenant=ghost", "--dry-run")
		if code != 0 || !strings.Contains(stdout, "would replay edited dead letter "+id0) || !strings.Contains(stdout, `"tenant": "ghost"`) {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		code, _, stderr = e.run(t, "", "edit", id0, "--set", "clubId.x=1")
		if code != 1 || !strings.Contains(stderr, "set clubId.x: clubId is a string, not an object") {
			t.Errorf("exit %d, stderr %s", code, stderr)
		}
		if n := e.count(t, e.topo.Commands); n != 0 {
			t.Errorf("commands stream holds %d messages", n)
		}
	})

	t.Run("edit --set", func(t *testing.T) {
		code, stdout, stderr := runDLQArgs(t, "", "edit", id0, "--config", cfg, "--set", "clubId=/demoapi/clubs/123")
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		m := regexp.MustCompile(`replayed edited dead letter ` + id0 + ` as (edit:REGISTRATION_DLQ:` + id0 + `:[0-9a-f]{12}) to ` + registerSubject).FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("stdout %q", stdout)
		}
		s, err := e.js.Stream(t.Context(), e.topo.Commands)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.GetLastMsgForSubject(t.Context(), registerSubject)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get(nats.MsgIdHdr) != m[1] || msg.Header.Get(handlers.HeaderEditedFrom) != "REGISTRATION_DLQ:"+id0 ||
			msg.Header.Get("X-Trace") != "trace-0" || msg.Header.Get(handlers.HeaderReason) != "" {
			t.Errorf("headers %v", msg.Header)
		}
		var body map[string]any
		if err := json.Unmarshal(msg.Data, &body); err != nil || body["clubId"] != "/demoapi/clubs/123" || body["registrationId"] != "reg-cmd-0" {
			t.Errorf("body %s", msg.Data)
		}
		// The dead letter is kept.
		if code, _, _ := e.run(t, "", "show", id0); code != 0 {
			t.Error("dead letter gone after edit")
		}
	})

	t.Run("edit in $EDITOR", func(t *testing.T) {
		script := filepath.Join(e.dir, "editor.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nsed -i 's#\"clubId\": \"club 123\"#\"clubId\": \"/demoapi/clubs/9\"#' \"$1\"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		t.Setenv("EDITOR", script)
		code, stdout, stderr := e.run(t, "", "edit", id1)
		if code != 0 || !strings.Contains(stdout, "replayed edited dead letter "+id1+" as edit:REGISTRATION_DLQ:"+id1+":") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if n := e.count(t, e.topo.Commands); n != 2 {
			t.Errorf("commands stream holds %d messages, want 2", n)
		}
		// An editor that changes nothing.
		t.Setenv("EDITOR", "true")
		code, stdout, _ = e.run(t, "", "edit", id1)
		if code != 0 || !strings.Contains(stdout, "unchanged; nothing replayed") {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
		// An editor that fails.
		t.Setenv("EDITOR", "false")
		code, _, stderr = e.run(t, "", "edit", id1)
		if code != 1 || !strings.Contains(stderr, "editor false: exit status 1; nothing replayed") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("edit refuses a body that is not an object", func(t *testing.T) {
		seq := e.deadLetter(t, `[1,2]`, map[string]string{"subject": registerSubject, "handler": "intake", "code": "rejected"})
		code, _, stderr := e.run(t, "", "edit", strconv.FormatUint(seq, 10), "--set", "a=1")
		if code != 1 || !strings.Contains(stderr, "the body is not a JSON object") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("purge", func(t *testing.T) {
		code, stdout, stderr := e.run(t, "n\n", "purge", "--filter", "code=rejected,flow=resamania.register")
		if code != 1 || !strings.Contains(stdout, "reg-cmd-1") || !strings.Contains(stdout, "purge 2 dead letters? [y/N] ") ||
			!strings.Contains(stderr, "not confirmed; nothing purged") {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if n := e.count(t, e.topo.DeadLetters); n != 3 {
			t.Errorf("%d dead letters, want 3", n)
		}
		code, stdout, _ = e.run(t, "y\n", "purge", "--filter", "code=rejected,flow=resamania.register")
		if code != 0 || !strings.Contains(stdout, "purged 2 dead letters") {
			t.Errorf("exit %d, stdout %s", code, stdout)
		}
		code, stdout, _ = e.run(t, "", "purge", "--all", "--yes")
		if code != 0 || stdout != "purged 1 dead letter\n" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
		code, stdout, _ = e.run(t, "", "ls")
		if code != 0 || strings.TrimSpace(stdout) != "no dead letters" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})

	t.Run("config file gives the URL", func(t *testing.T) {
		t.Setenv("REGISTRAR_CONFIG", cfg)
		code, stdout, stderr := runDLQArgs(t, "", "ls")
		if code != 0 || strings.TrimSpace(stdout) != "no dead letters" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}
