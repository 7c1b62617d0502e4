package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/transport"
)

func TestPublish(t *testing.T) {
	ns := startNATS(t)
	url := ns.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := transport.Topology{}.WithDefaults()
	if err := transport.ProvisionStreams(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), topo.Commands)
	if err != nil {
		t.Fatal(err)
	}
	subject := events.CommandSubject(events.CmdResamaniaRegister)
	if subject != "registration.cmd.resamania.register" {
		t.Fatalf("register subject is %q", subject)
	}
	file := filepath.Join("..", "..", "events", "testdata", "resamania.register.json")
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	publish := func(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		var out, errb bytes.Buffer
		code = runContext(t.Context(), append([]string{"publish"}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	// last returns the stream's last message on subject and the number of
	// messages in the stream.
	last := func(t *testing.T) (*jetstream.RawStreamMsg, uint64) {
		t.Helper()
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.GetLastMsgForSubject(t.Context(), subject)
		if err != nil {
			t.Fatal(err)
		}
		return m, info.State.Msgs
	}

	t.Run("file", func(t *testing.T) {
		code, stdout, stderr := publish(t, "", "--subject", subject, "--nats", url, "--msg-id", "cli-test-1", file)
		if code != 0 {
			t.Fatalf("exit %d\nstderr: %s", code, stderr)
		}
		if !strings.Contains(stdout, "published cli-test-1 to "+subject+", stream "+topo.Commands) || strings.Contains(stdout, "duplicate") {
			t.Errorf("stdout: %q", stdout)
		}
		m, n := last(t)
		if n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != "cli-test-1" {
			t.Errorf("Nats-Msg-Id %q, want cli-test-1", got)
		}
		if !bytes.Equal(m.Data, body) {
			t.Errorf("body changed on the way:\n got %q\nwant %q", m.Data, body)
		}
	})

	t.Run("same id again is a duplicate", func(t *testing.T) {
		code, stdout, stderr := publish(t, "", "--subject", subject, "--nats", url, "--msg-id", "cli-test-1", file)
		if code != 0 {
			t.Fatalf("exit %d\nstderr: %s", code, stderr)
		}
		if !strings.Contains(stdout, "duplicate") {
			t.Errorf("stdout does not report the duplicate: %q", stdout)
		}
		if _, n := last(t); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		in := `{"registrationId":"from-stdin","tenant":"acme"}`
		code, stdout, stderr := publish(t, in, "--subject", subject, "--nats", url, "--msg-id", "cli-test-2", "-")
		if code != 0 {
			t.Fatalf("exit %d\nstderr: %s", code, stderr)
		}
		if !strings.Contains(stdout, "published cli-test-2") {
			t.Errorf("stdout: %q", stdout)
		}
		m, n := last(t)
		if n != 2 {
			t.Errorf("stream holds %d messages, want 2", n)
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != "cli-test-2" {
			t.Errorf("Nats-Msg-Id %q, want cli-test-2", got)
		}
		if string(m.Data) != in {
			t.Errorf("body %q, want %q", m.Data, in)
		}
	})

	t.Run("default msg id", func(t *testing.T) {
		code, stdout, stderr := publish(t, "{}", "--subject", subject, "--nats", url, "-")
		if code != 0 {
			t.Fatalf("exit %d\nstderr: %s", code, stderr)
		}
		m, n := last(t)
		if n != 3 {
			t.Errorf("stream holds %d messages, want 3", n)
		}
		id := m.Header.Get(nats.MsgIdHdr)
		if id == "" || !strings.Contains(stdout, "published "+id+" ") {
			t.Errorf("Nats-Msg-Id %q; stdout %q", id, stdout)
		}
	})

	refused := []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "event subject", args: []string{"--subject", "registration.evt.completed", "--nats", url, file},
			stderr: `subject "registration.evt.completed" is not a command subject`},
		{name: "step subject", args: []string{"--subject", "registrar.step.resamania.lookup", "--nats", url, file},
			stderr: "is not a command subject"},
		{name: "missing file", args: []string{"--subject", subject, "--nats", url, filepath.Join(t.TempDir(), "nope.json")},
			stderr: "no such file"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			code, _, stderr := publish(t, "", tt.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not contain %q: %q", tt.stderr, stderr)
			}
			if _, n := last(t); n != 3 {
				t.Errorf("stream holds %d messages, want 3", n)
			}
		})
	}

	t.Run("no server", func(t *testing.T) {
		code, _, stderr := publish(t, "", "--subject", subject, "--nats", "nats://"+freeAddr(t), file)
		if code != 1 || !strings.Contains(stderr, "connect nats://") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestPublishWithoutStreams(t *testing.T) {
	ns := startNATS(t)
	var out, errb bytes.Buffer
	code := runContext(t.Context(), []string{"publish", "--subject", "registration.cmd.cancel", "--nats", ns.ClientURL(), "-"},
		strings.NewReader(`{"registrationId":"r1"}`), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "has it created its streams?") {
		t.Errorf("exit %d, stderr %q", code, &errb)
	}
}
