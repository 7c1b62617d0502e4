package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/dlq"
	"github.com/registrar-dev/registrar/events"
)

const dlqUsage = `usage: registrar dlq COMMAND [flags]

Commands:
  ls      [--group G] [--since 1h|RFC3339] [--flow F] [--tenant T] [--registration ID]
          [--handler H] [--code C] [--all] [--json]
          the dead letters grouped by cause (flow, handler, code); --all: one line each
  show    ID [--json]
          one dead letter: its headers, failure and body
  replay  (ID... | --group G | --filter K=V,... | --all) [--rate 50] [--dry-run]
          publish dead letters back to their original subjects, then delete them
  edit    ID [--set field=value]... [--dry-run]
          publish a corrected body (--set, else $EDITOR); the dead letter is kept
  purge   (ID... | --group G | --filter K=V,... | --all) [--yes]
          delete dead letters (asks first without --yes)

Common flags:
  --nats URL      NATS server URL (default: nats.url of the configuration file)
  --config FILE   configuration file (default: $REGISTRAR_CONFIG)
  --creds FILE    NATS credentials file (default: the configuration's)
  --stream NAME   dead-letter stream (default: the configuration's, else REGISTRATION_DLQ)

ID is a dead letter's stream sequence (the ID column of 'ls --all').
--filter keys: flow, tenant, registration, handler, code, group, since.
`

const defaultDLQStream = "REGISTRATION_DLQ"

func runDLQ(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errUsage
	}
	switch args[0] {
	case "ls", "list":
		return runDLQList(ctx, args[1:], stdout, stderr)
	case "show":
		return runDLQShow(ctx, args[1:], stdout, stderr)
	case "replay":
		return runDLQReplay(ctx, args[1:], stdout, stderr)
	case "edit":
		return runDLQEdit(ctx, args[1:], stdin, stdout, stderr)
	case "purge", "rm":
		return runDLQPurge(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "registrar dlq: unknown command %q\n\n%s", args[0], dlqUsage)
		return errUsage
	}
}

// dlqFlags are the flags every dlq command has.
type dlqFlags struct {
	fs         *flag.FlagSet
	line       string // the command's usage line
	stderr     io.Writer
	natsURL    string
	configPath string
	creds      string
	stream     string
}

func newDLQFlags(name, line string, stderr io.Writer) *dlqFlags {
	f := &dlqFlags{fs: flag.NewFlagSet("dlq "+name, flag.ContinueOnError), line: line, stderr: stderr}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.natsURL, "nats", "", "NATS server URL (default: nats.url of the configuration file)")
	f.fs.StringVar(&f.configPath, "config", os.Getenv("REGISTRAR_CONFIG"), "configuration file (YAML)")
	f.fs.StringVar(&f.creds, "creds", "", "NATS credentials file (default: the configuration's nats.credentials)")
	f.fs.StringVar(&f.stream, "stream", "", "dead-letter stream (default: the configuration's, else "+defaultDLQStream+")")
	f.fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registrar dlq "+line)
		f.fs.PrintDefaults()
	}
	return f
}

// parse parses args, flags and arguments in any order, and returns the
// arguments.
func (f *dlqFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(f.fs, args); err != nil {
			return nil, err
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError prints the problem and the command's usage line; exit 2.
func (f *dlqFlags) usageError(format string, a ...any) error {
	fmt.Fprintf(f.stderr, "registrar dlq %s: %s\nusage: registrar dlq %s\n", strings.TrimPrefix(f.fs.Name(), "dlq "), fmt.Sprintf(format, a...), f.line)
	return errUsage
}

// dlqConn is an open connection to the dead-letter stream.
type dlqConn struct {
	c      *dlq.Client
	cfg    *config.Config // nil without a configuration file
	stream string
	nc     *nats.Conn
}

func (d *dlqConn) Close() { d.nc.Close() }

// open reads the configuration file, if any, and connects to the
// dead-letter stream.
func (f *dlqFlags) open(ctx context.Context) (*dlqConn, error) {
	var cfg *config.Config
	if f.configPath != "" {
		var err error
		if cfg, err = config.Load(f.configPath, os.LookupEnv); err != nil {
			return nil, err
		}
	}
	url, creds, stream := f.natsURL, f.creds, f.stream
	if cfg != nil {
		url = firstNonEmpty(url, cfg.NATS.URL)
		creds = firstNonEmpty(creds, cfg.NATS.Credentials)
		stream = firstNonEmpty(stream, cfg.NATS.Streams.DeadLetters)
	}
	stream = firstNonEmpty(stream, defaultDLQStream)
	if url == "" {
		return nil, f.usageError("no NATS URL: give --nats URL, or --config FILE (or REGISTRAR_CONFIG) with nats.url " +
			"(the embedded server of a configuration without nats.url cannot be reached from outside the service)")
	}
	opts := []nats.Option{nats.Name("registrar-dlq"), nats.Timeout(5 * time.Second)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if cfg != nil {
		if cfg.NATS.NKey != "" {
			opt, err := nats.NkeyOptionFromSeed(cfg.NATS.NKey)
			if err != nil {
				return nil, fmt.Errorf("nats nkey: %w", err)
			}
			opts = append(opts, opt)
		}
		if cfg.NATS.TLS.CA != "" {
			opts = append(opts, nats.RootCAs(cfg.NATS.TLS.CA))
		}
		if cfg.NATS.TLS.Cert != "" || cfg.NATS.TLS.Key != "" {
			opts = append(opts, nats.ClientCert(cfg.NATS.TLS.Cert, cfg.NATS.TLS.Key))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := js.Stream(ctx, stream); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("stream %s not found (is registrar running and has it created its streams?)", stream)
		}
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	return &dlqConn{c: dlq.New(js, stream), cfg: cfg, stream: stream, nc: nc}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parseSince reads a --since value: a duration back from now (90m, 1h,
// 2d) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: negative duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (1h, 30m, 2d) or an RFC 3339 time (2026-03-01T10:00:00Z)", s)
}

// parseFilter reads a --filter value, "key=value,key=value".
func parseFilter(s string, now time.Time) (dlq.Filter, error) {
	var f dlq.Filter
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return f, fmt.Errorf("filter %q: want key=value", part)
		}
		switch k {
		case "flow":
			f.Flow = v
		case "tenant":
			f.Tenant = v
		case "registration", "registrationId":
			f.Registration = v
		case "handler":
			f.Handler = v
		case "code":
			f.Code = v
		case "group":
			f.Group = v
		case "since":
			t, err := parseSince(v, now)
			if err != nil {
				return f, err
			}
			f.Since = t
		default:
			return f, fmt.Errorf("filter key %q: want flow, tenant, registration, handler, code, group or since", k)
		}
	}
	if f.Flow == "" && f.Tenant == "" && f.Registration == "" && f.Handler == "" && f.Code == "" && f.Group == "" && f.Since.IsZero() {
		return f, fmt.Errorf("filter %q selects nothing in particular: use --all to mean every dead letter", s)
	}
	return f, nil
}

func parseIDs(args []string) ([]uint64, error) {
	var ids []uint64
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not a dead letter ID (a stream sequence, such as 42)", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// selectionFlags are the ways replay and purge select dead letters.
type selectionFlags struct {
	group, filter string
	all           bool
}

func (s *selectionFlags) add(fs *flag.FlagSet, verb string) {
	fs.StringVar(&s.group, "group", "", "the dead letters of this group (see ls) to "+verb)
	fs.StringVar(&s.filter, "filter", "", `the dead letters to `+verb+`: "flow=…,tenant=…,registration=…,handler=…,code=…,group=…,since=…"`)
	fs.BoolVar(&s.all, "all", false, "every dead letter")
}

// filter returns the selection of args (IDs) and the flags; exactly one
// way must be given.
func (s *selectionFlags) filterOf(f *dlqFlags, args []string) (dlq.Filter, error) {
	n := 0
	for _, given := range []bool{len(args) > 0, s.group != "", s.filter != "", s.all} {
		if given {
			n++
		}
	}
	if n != 1 {
		return dlq.Filter{}, f.usageError("select the dead letters with exactly one of: IDs, --group, --filter, --all")
	}
	switch {
	case len(args) > 0:
		ids, err := parseIDs(args)
		if err != nil {
			return dlq.Filter{}, f.usageError("%v", err)
		}
		return dlq.Filter{Seqs: ids}, nil
	case s.group != "":
		return dlq.Filter{Group: s.group}, nil
	case s.filter != "":
		flt, err := parseFilter(s.filter, time.Now())
		if err != nil {
			return dlq.Filter{}, f.usageError("%v", err)
		}
		return flt, nil
	}
	return dlq.Filter{}, nil
}

// selectDLQ lists the selected dead letters; every ID asked for must be
// there.
func selectDLQ(ctx context.Context, c *dlq.Client, flt dlq.Filter, verb string) ([]dlq.DeadLetter, error) {
	dls, err := c.List(ctx, flt)
	if err != nil {
		return nil, err
	}
	if len(flt.Seqs) > 0 {
		found := map[uint64]bool{}
		for _, d := range dls {
			found[d.Seq] = true
		}
		var missing []string
		for _, id := range flt.Seqs {
			if !found[id] {
				missing = append(missing, strconv.FormatUint(id, 10))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("no dead letter %s (already replayed or purged?); nothing %s", strings.Join(missing, ", "), verb)
		}
	}
	return dls, nil
}

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDLQFlags("ls", "ls [--group G] [--since 1h|RFC3339] [--flow F] [--tenant T] [--registration ID] [--handler H] [--code C] [--all] [--json]", stderr)
	var flt dlq.Filter
	var since string
	f.fs.StringVar(&flt.Group, "group", "", "only this group")
	f.fs.StringVar(&since, "since", "", "only dead letters written since: a duration back from now (1h, 2d) or an RFC 3339 time")
	f.fs.StringVar(&flt.Flow, "flow", "", "only this flow (resamania.register, …)")
	f.fs.StringVar(&flt.Tenant, "tenant", "", "only this tenant")
	f.fs.StringVar(&flt.Registration, "registration", "", "only this registration id")
	f.fs.StringVar(&flt.Handler, "handler", "", "only this handler")
	f.fs.StringVar(&flt.Code, "code", "", "only this error code (vendor_unavailable, poison, panic, internal, rejected)")
	all := f.fs.Bool("all", false, "list each dead letter instead of the groups")
	asJSON := f.fs.Bool("json", false, "print JSON")
	args, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return f.usageError("unexpected argument %q", args[0])
	}
	if since != "" {
		if flt.Since, err = parseSince(since, time.Now()); err != nil {
			return f.usageError("%v", err)
		}
	}
	conn, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	dls, err := conn.c.List(ctx, flt)
	if err != nil {
		return err
	}
	switch {
	case *asJSON && *all:
		items := make([]dlqJSON, 0, len(dls))
		for _, d := range dls {
			items = append(items, toJSON(d, false))
		}
		return writeJSON(stdout, items)
	case *asJSON:
		return writeJSON(stdout, dlq.Groups(dls))
	case len(dls) == 0:
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	case *all:
		writeDLQTable(stdout, dls)
		fmt.Fprintf(stdout, "%s\n", plural(len(dls), "dead letter"))
		return nil
	}
	groups := dlq.Groups(dls)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tFLOW\tHANDLER\tCODE\tCOUNT\tFIRST\tLAST\tREASON")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.ID, dash(g.Flow), dash(g.Handler), dash(g.Code), g.Count,
			fmtTime(g.First), fmtTime(g.Last), oneLine(g.Reason, 80))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%s in %s\n", plural(len(dls), "dead letter"), plural(len(groups), "group"))
	return nil
}

// writeDLQTable prints one line per dead letter.
func writeDLQTable(w io.Writer, dls []dlq.DeadLetter) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tFLOW\tHANDLER\tCODE\tREGISTRATION\tREASON")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Seq, fmtTime(d.When()), dash(d.Flow), dash(d.Handler), dash(d.Code),
			dash(d.RegistrationID), oneLine(d.Reason, 80))
	}
	tw.Flush()
}

// dlqJSON is a dead letter as `ls --all --json` and `show --json` print it.
type dlqJSON struct {
	ID              uint64              `json:"id"`
	Group           string              `json:"group"`
	Subject         string              `json:"subject"`
	Stored          string              `json:"stored"`
	OriginalSubject string              `json:"originalSubject"`
	OriginalMsgID   string              `json:"originalMsgId,omitempty"`
	Flow            string              `json:"flow,omitempty"`
	Handler         string              `json:"handler"`
	Code            string              `json:"code"`
	RegistrationID  string              `json:"registrationId,omitempty"`
	Tenant          string              `json:"tenant,omitempty"`
	Reason          string              `json:"reason"`
	Attempts        int                 `json:"attempts"`
	Deliveries      int                 `json:"deliveries"`
	FirstFailure    string              `json:"firstFailure,omitempty"`
	LastFailure     string              `json:"lastFailure,omitempty"`
	DeadLetteredAt  string              `json:"deadLetteredAt,omitempty"`
	Headers         map[string][]string `json:"headers,omitempty"`
	Body            any                 `json:"body,omitempty"` // the JSON body, or the body as a string
}

func toJSON(d dlq.DeadLetter, full bool) dlqJSON {
	j := dlqJSON{
		ID: d.Seq, Group: d.Group(), Subject: d.Subject, Stored: jsonTime(d.Stored),
		OriginalSubject: d.OriginalSubject, OriginalMsgID: d.OriginalMsgID, Flow: d.Flow, Handler: d.Handler, Code: d.Code,
		RegistrationID: d.RegistrationID, Tenant: d.Tenant, Reason: d.Reason, Attempts: d.Attempts, Deliveries: d.Deliveries,
		FirstFailure: jsonTime(d.FirstFailure), LastFailure: jsonTime(d.LastFailure), DeadLetteredAt: jsonTime(d.DeadLetteredAt),
	}
	if full {
		j.Headers = map[string][]string{}
		for k, vs := range d.Header {
			for _, v := range vs {
				j.Headers[k] = append(j.Headers[k], maskHeader(k, v))
			}
		}
		if json.Valid(d.Body) {
			j.Body = json.RawMessage(d.Body)
		} else {
			j.Body = string(d.Body)
		}
	}
	return j
}

func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// secretHeaderWords mark header names whose values show shows masked.
var secretHeaderWords = []string{"authorization", "token", "secret", "password", "api-key", "api_key", "apikey"}

func maskHeader(name, value string) string {
	n := strings.ToLower(name)
	for _, w := range secretHeaderWords {
		if strings.Contains(n, w) {
			return "[redacted]"
		}
	}
	return value
}

const maxShownBody = 4 << 10

// openOne connects and reads the one dead letter args names.
func (f *dlqFlags) openOne(ctx context.Context, args []string) (*dlqConn, dlq.DeadLetter, error) {
	if len(args) != 1 {
		return nil, dlq.DeadLetter{}, f.usageError("want one dead letter ID")
	}
	ids, err := parseIDs(args)
	if err != nil {
		return nil, dlq.DeadLetter{}, f.usageError("%v", err)
	}
	conn, err := f.open(ctx)
	if err != nil {
		return nil, dlq.DeadLetter{}, err
	}
	d, err := conn.c.Get(ctx, ids[0])
	if errors.Is(err, dlq.ErrNotFound) {
		err = fmt.Errorf("no dead letter %d in stream %s", ids[0], conn.stream)
	}
	if err != nil {
		conn.Close()
		return nil, dlq.DeadLetter{}, err
	}
	return conn, d, nil
}

func runDLQShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDLQFlags("show", "show ID [--json]", stderr)
	asJSON := f.fs.Bool("json", false, "print JSON")
	args, err := f.parse(args)
	if err != nil {
		return err
	}
	conn, d, err := f.openOne(ctx, args)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *asJSON {
		return writeJSON(stdout, toJSON(d, true))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", d.Seq)
	row("group", d.Group())
	row("subject", d.Subject)
	row("stored", fmtTimeNano(d.Stored))
	row("original subject", dash(d.OriginalSubject))
	row("original msg id", dash(d.OriginalMsgID))
	row("flow", dash(d.Flow))
	row("handler", dash(d.Handler))
	row("code", dash(d.Code))
	row("registration", dash(d.RegistrationID))
	row("tenant", dash(d.Tenant))
	row("attempts", d.Attempts)
	row("deliveries", d.Deliveries)
	row("first failure", fmtTimeNano(d.FirstFailure))
	row("last failure", fmtTimeNano(d.LastFailure))
	row("dead-lettered at", fmtTimeNano(d.DeadLetteredAt))
	tw.Flush()
	fmt.Fprintf(stdout, "reason:\n  %s\n", strings.ReplaceAll(dash(d.Reason), "\n", "\n  "))
	fmt.Fprintln(stdout, "headers:")
	names := make([]string, 0, len(d.Header))
	for k := range d.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range d.Header[k] {
			fmt.Fprintf(stdout, "  %s: %s\n", k, maskHeader(k, v))
		}
	}
	fmt.Fprintf(stdout, "body (%d bytes):\n", len(d.Body))
	var pretty bytes.Buffer
	if json.Valid(d.Body) && json.Indent(&pretty, d.Body, "  ", "  ") == nil {
		fmt.Fprintf(stdout, "  %s\n", pretty.Bytes())
		return nil
	}
	body, more := d.Body, ""
	if len(body) > maxShownBody {
		body, more = body[:maxShownBody], fmt.Sprintf(" … (%d more bytes)", len(d.Body)-maxShownBody)
	}
	fmt.Fprintf(stdout, "  %q%s\n", body, more)
	return nil
}

func runDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDLQFlags("replay", "replay (ID... | --group G | --filter K=V,... | --all) [--rate 50] [--dry-run]", stderr)
	var sel selectionFlags
	sel.add(f.fs, "replay")
	rateFlag := f.fs.Float64("rate", dlq.DefaultRate, "messages per second")
	dryRun := f.fs.Bool("dry-run", false, "list what would be replayed; replay nothing")
	f.fs.Bool("yes", false, "accepted for symmetry with purge: replay asks no confirmation")
	args, err := f.parse(args)
	if err != nil {
		return err
	}
	flt, err := sel.filterOf(f, args)
	if err != nil {
		return err
	}
	if *rateFlag <= 0 {
		return f.usageError("--rate must be more than 0")
	}
	conn, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	dls, err := selectDLQ(ctx, conn.c, flt, "replayed")
	if err != nil {
		return err
	}
	if len(dls) == 0 {
		fmt.Fprintln(stdout, "no dead letters match; nothing replayed")
		return nil
	}
	if *dryRun {
		res, err := conn.c.Replay(ctx, dls, dlq.ReplayOptions{DryRun: true})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tORIGINAL SUBJECT\tREGISTRATION\tMSG ID")
		for i, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.Seq, dash(d.OriginalSubject), dash(d.RegistrationID), res.Items[i].MsgID)
		}
		tw.Flush()
		for _, it := range res.Items {
			if it.Failed() {
				fmt.Fprintf(stderr, "dead letter %d: cannot be replayed: %s\n", it.Seq, strings.TrimPrefix(it.Outcome, "failed: "))
			}
		}
		fmt.Fprintf(stdout, "would replay %s (dry run: nothing replayed)\n", plural(len(dls)-res.Failed, "dead letter"))
		return nil
	}

	// Rates are measured from the first publish: the limiter lets the
	// first message through at once.
	start := time.Now()
	var first time.Time
	progress := func(done, total int) {
		const width = 10
		if first.IsZero() {
			first = time.Now()
		}
		filled := done * width / total
		fmt.Fprintf(stderr, "\r[%s%s] %d/%d  %.1f/s", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total,
			paceOf(done, first, time.Now()))
	}
	res, err := conn.c.Replay(ctx, dls, dlq.ReplayOptions{Rate: *rateFlag, By: operator(), Progress: progress})
	fmt.Fprintln(stderr)
	for _, it := range res.Items {
		if it.Failed() {
			fmt.Fprintf(stderr, "dead letter %d: %s\n", it.Seq, it.Outcome)
		}
	}
	done := len(res.Items)
	pace := paceOf(done, start, time.Now())
	if done > 1 {
		pace = paceOf(done, res.Items[0].At, res.Items[done-1].At)
	}
	fmt.Fprintf(stdout, "replayed %d, already replayed %d, failed %d (%.1f/s)\n", res.Replayed, res.AlreadyReplayed, res.Failed, pace)
	if err != nil {
		return fmt.Errorf("stopped after %d of %d: %w", done, len(dls), err)
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d of %d dead letters failed; they are still in %s", res.Failed, len(dls), conn.stream)
	}
	return nil
}

// paceOf is the rate of n messages, the first at from and the last at to.
func paceOf(n int, from, to time.Time) float64 {
	if n <= 1 {
		return 0
	}
	return float64(n-1) / max(to.Sub(from).Seconds(), 1e-3)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runDLQEdit(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f := newDLQFlags("edit", "edit ID [--set field=value]... [--dry-run]", stderr)
	var sets stringList
	f.fs.Var(&sets, "set", "set a field of the body: `field.path=value` (value: JSON if it parses, else a string); repeatable; without it, $EDITOR edits the body")
	dryRun := f.fs.Bool("dry-run", false, "show and check the edited body; publish nothing")
	args, err := f.parse(args)
	if err != nil {
		return err
	}
	conn, d, err := f.openOne(ctx, args)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !isJSONObject(d.Body) {
		return fmt.Errorf("dead letter %d: the body is not a JSON object; edit only edits JSON objects", d.Seq)
	}
	if d.OriginalSubject == "" {
		return fmt.Errorf("dead letter %d has no original subject to publish to", d.Seq)
	}

	var edited []byte
	if len(sets) > 0 {
		if edited, err = dlq.SetFields(d.Body, sets); err != nil {
			return err
		}
	} else {
		if edited, err = editInEditor(ctx, d, stdin, stdout, stderr); err != nil {
			return err
		}
		if !isJSONObject(edited) {
			return errors.New("the edited body is not a JSON object; nothing replayed")
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, edited); err != nil {
		return fmt.Errorf("the edited body: %w", err)
	}
	edited = compact.Bytes()
	var before bytes.Buffer
	if json.Compact(&before, d.Body) == nil && bytes.Equal(before.Bytes(), edited) {
		fmt.Fprintf(stdout, "dead letter %d unchanged; nothing replayed ('registrar dlq replay %d' replays it as is)\n", d.Seq, d.Seq)
		return nil
	}

	if strings.HasPrefix(d.OriginalSubject, events.CommandSubjectPrefix) {
		var tenants events.TenantChecker // nil: any tenant
		if conn.cfg != nil {
			tenants = conn.cfg
		}
		if _, err := events.DecodeCommand(d.OriginalSubject, edited, tenants); err != nil {
			var inv *events.InvalidCommandError
			if !errors.As(err, &inv) {
				return err
			}
			fmt.Fprintf(stderr, "the edited body is not a valid %s command:\n", strings.TrimPrefix(d.OriginalSubject, events.CommandSubjectPrefix))
			for _, fe := range inv.Errors {
				fmt.Fprintf(stderr, "  %s: %s\n", fe.Field, fe.Message)
			}
			return fmt.Errorf("invalid command (%s); nothing replayed", plural(len(inv.Errors), "invalid field"))
		}
	}
	for _, field := range redactedFields(edited) {
		fmt.Fprintf(stderr, "warning: %s is still \"[redacted]\" (dead letters never keep secrets): set it with --set %s=…\n", field, field)
	}

	item, err := conn.c.Edit(ctx, d, edited, dlq.ReplayOptions{DryRun: *dryRun, By: operator()})
	if err != nil {
		return err
	}
	switch item.Outcome {
	case dlq.OutcomeWouldReplay:
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, edited, "", "  ")
		fmt.Fprintf(stdout, "%s\nwould replay edited dead letter %d as %s to %s (dry run: nothing published)\n", pretty.Bytes(), d.Seq, item.MsgID, item.Subject)
	case dlq.OutcomeAlreadyReplayed:
		fmt.Fprintf(stdout, "edited dead letter %d was already replayed with this body as %s to %s; nothing published\n", d.Seq, item.MsgID, item.Subject)
	default:
		fmt.Fprintf(stdout, "replayed edited dead letter %d as %s to %s\n", d.Seq, item.MsgID, item.Subject)
		fmt.Fprintf(stdout, "the dead letter is kept: 'registrar dlq purge %d' once the correction went through\n", d.Seq)
	}
	return nil
}

// editInEditor writes d's body, indented, to a temporary file, runs
// $EDITOR (default vi) on it and returns what the file then holds.
func editInEditor(ctx context.Context, d dlq.DeadLetter, stdin io.Reader, stdout, stderr io.Writer) ([]byte, error) {
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, d.Body, "", "  "); err != nil {
		return nil, err
	}
	pretty.WriteByte('\n')
	tmp, err := os.CreateTemp("", fmt.Sprintf("registrar-dlq-%d-*.json", d.Seq))
	if err != nil {
		return nil, err
	}
	path := tmp.Name()
	defer os.Remove(path)
	if _, err := tmp.Write(pretty.Bytes()); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	editor := strings.Fields(os.Getenv("EDITOR"))
	if len(editor) == 0 {
		editor = []string{"vi"}
	}
	cmd := exec.CommandContext(ctx, editor[0], append(editor[1:], path)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("editor %s: %w; nothing replayed", strings.Join(editor, " "), err)
	}
	return os.ReadFile(path)
}

func isJSONObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// redactedFields returns the paths of the string values "[redacted]" in a
// JSON body.
func redactedFields(body []byte) []string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case string:
			if v == "[redacted]" {
				out = append(out, path)
			}
		case map[string]any:
			for k, c := range v {
				walk(strings.TrimPrefix(path+"."+k, "."), c)
			}
		case []any:
			for i, c := range v {
				walk(path+"."+strconv.Itoa(i), c)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

func runDLQPurge(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f := newDLQFlags("purge", "purge (ID... | --group G | --filter K=V,... | --all) [--yes]", stderr)
	var sel selectionFlags
	sel.add(f.fs, "purge")
	yes := f.fs.Bool("yes", false, "purge without asking")
	args, err := f.parse(args)
	if err != nil {
		return err
	}
	flt, err := sel.filterOf(f, args)
	if err != nil {
		return err
	}
	conn, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	dls, err := selectDLQ(ctx, conn.c, flt, "purged")
	if err != nil {
		return err
	}
	if len(dls) == 0 {
		fmt.Fprintln(stdout, "no dead letters match; nothing purged")
		return nil
	}
	if !*yes {
		writeDLQTable(stdout, dls)
		fmt.Fprintf(stdout, "purge %s? [y/N] ", plural(len(dls), "dead letter"))
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		fmt.Fprintln(stdout)
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("not confirmed; nothing purged")
		}
	}
	n, err := conn.c.Purge(ctx, dls)
	fmt.Fprintf(stdout, "purged %s\n", plural(n, "dead letter"))
	if err != nil {
		return err
	}
	if gone := len(dls) - n; gone > 0 {
		fmt.Fprintf(stdout, "%s already gone\n", plural(gone, "dead letter"))
	}
	return nil
}

// operator names who runs the command: user@host.
func operator() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return firstNonEmpty(name, "unknown") + "@" + firstNonEmpty(host, "unknown")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimeNano(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// oneLine flattens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return dash(s)
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
