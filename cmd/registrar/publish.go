package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/events"
)

func runPublish(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subject := fs.String("subject", "", "command subject, e.g. "+events.CommandSubject(events.CmdResamaniaRegister))
	url := fs.String("nats", envOr("NATS_URL", nats.DefaultURL), "NATS server URL")
	creds := fs.String("creds", "", "NATS credentials file")
	msgID := fs.String("msg-id", "", "Nats-Msg-Id header (default: a new UUID); re-publishing with the same id is dropped by the server")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registrar publish --subject SUBJECT [--nats URL] [--msg-id ID] FILE|-")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *subject == "" || fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if !strings.HasPrefix(*subject, events.CommandSubjectPrefix) {
		return fmt.Errorf("subject %q is not a command subject (%s…)", *subject, events.CommandSubjectPrefix)
	}
	var body []byte
	var err error
	if name := fs.Arg(0); name == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, 8<<20))
	} else {
		body, err = os.ReadFile(name)
	}
	if err != nil {
		return err
	}
	opts := []nats.Option{nats.Name("registrar-publish"), nats.Timeout(5 * time.Second)}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	id := *msgID
	if id == "" {
		id = uuid.NewString()
	}
	msg := nats.NewMsg(*subject)
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, id)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if err != nil {
		return fmt.Errorf("publish: %w (is registrar running and has it created its streams?)", err)
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate: the server already had this Nats-Msg-Id)"
	}
	fmt.Fprintf(stdout, "published %s to %s, stream %s sequence %d%s\n", id, *subject, ack.Stream, ack.Sequence, dup)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
