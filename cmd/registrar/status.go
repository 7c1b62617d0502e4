package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/handlers"
)

const statusUsage = `usage: registrar status ID [--admin HOST:PORT] [--json]
       registrar status --waiting [otp|activation] [--limit 100] [--admin HOST:PORT] [--json]

Shows a registration's flow as the admin API has it (GET /v1/registrations/ID):
its state, what it waits for and until when, each step with its time,
duration, attempts and outcome, the events it emitted and its last error.
--waiting lists the flows waiting for a code (otp), a CloudSuite review
(activation), or anything (no value), longest waiting first.

The admin address is --admin, else admin.listen of --config FILE (or
REGISTRAR_CONFIG), else 127.0.0.1:9090.
`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminAddr := fs.String("admin", "", "the service's admin address (host:port or URL)")
	configPath := fs.String("config", os.Getenv("REGISTRAR_CONFIG"), "configuration file (YAML), for admin.listen")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	waiting := fs.Bool("waiting", false, "list the waiting flows (optionally: otp or activation)")
	limit := fs.Int("limit", 100, "with --waiting: at most this many (1 to 1000)")
	fs.Usage = func() {
		fmt.Fprint(stderr, statusUsage)
		fs.PrintDefaults()
	}
	// Flags may follow the ID or the --waiting value.
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	base, err := adminBase(*adminAddr, *configPath)
	if err != nil {
		return err
	}
	var path string
	switch {
	case *waiting && len(positional) <= 1:
		q := url.Values{"limit": {fmt.Sprint(*limit)}}
		if len(positional) == 1 {
			q.Set("waiting", positional[0])
		}
		path = "/v1/registrations?" + q.Encode()
	case !*waiting && len(positional) == 1:
		path = "/v1/registrations/" + url.PathEscape(positional[0])
	default:
		fs.Usage()
		return errUsage
	}
	body, code, err := adminGet(ctx, base+path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%s: %s (HTTP %d)", strings.Join(positional, " "), e.Error, code)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	if *waiting {
		var list struct {
			Registrations []handlers.FlowStatus `json:"registrations"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Errorf("read the answer: %w", err)
		}
		printWaiting(stdout, list.Registrations, time.Now())
		return nil
	}
	var st handlers.FlowStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	printStatus(stdout, st)
	return nil
}

// adminBase is the admin API's base URL.
func adminBase(flagAddr, configPath string) (string, error) {
	addr := flagAddr
	if addr == "" && configPath != "" {
		cfg, err := config.Load(configPath, os.LookupEnv)
		if err != nil {
			return "", err
		}
		addr = cfg.Admin.Listen
	}
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	if !strings.Contains(addr, "://") {
		// A listener on every interface is reached on loopback.
		addr = strings.Replace(addr, "0.0.0.0:", "127.0.0.1:", 1)
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/"), nil
}

func adminGet(ctx context.Context, u string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("ask the admin API: %w (is registrar running, and is --admin its admin.listen?)", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return b, resp.StatusCode, err
}

func printStatus(w io.Writer, st handlers.FlowStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "registration:\t%s\n", st.RegistrationID)
	fmt.Fprintf(tw, "flow:\t%s (tenant %s)\n", st.Flow, st.Tenant)
	state := string(st.Status)
	if st.WaitingFor != "" {
		state += " for " + st.WaitingFor
		if st.Deadline != nil {
			state += " until " + st.Deadline.UTC().Format(time.RFC3339)
		}
	}
	fmt.Fprintf(tw, "state:\t%s\n", state)
	if st.Step != "" {
		fmt.Fprintf(tw, "step:\t%s\n", st.Step)
	}
	fmt.Fprintf(tw, "created:\t%s\n", st.CreatedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "updated:\t%s\n", st.UpdatedAt.UTC().Format(time.RFC3339Nano))
	_ = tw.Flush()
	fmt.Fprintln(w, "steps:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTEP\tSTARTED\tDURATION\tATTEMPTS\tOUTCOME")
	for _, s := range st.Steps {
		outcome := s.Outcome
		if s.Error != "" {
			outcome += ": " + oneLine(s.Error, 100)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%s\n", s.Seq, s.Step, s.StartedAt.UTC().Format("15:04:05.000"),
			s.FinishedAt.Sub(s.StartedAt).Round(time.Microsecond), s.Attempts, outcome)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "events:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range st.Events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.At.UTC().Format("15:04:05.000"), e.Type, e.ID)
	}
	_ = tw.Flush()
	if e := st.LastError; e != nil {
		fmt.Fprintf(w, "last error: %s at %s in %s: %s\n", e.Code, e.At.UTC().Format(time.RFC3339), dash(e.Step), oneLine(e.Message, 300))
	}
}

func printWaiting(w io.Writer, flows []handlers.FlowStatus, now time.Time) {
	if len(flows) == 0 {
		fmt.Fprintln(w, "no flow waits")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGISTRATION\tFLOW\tTENANT\tWAITING FOR\tSINCE\tUNTIL")
	for _, f := range flows {
		until := "-"
		if f.Deadline != nil {
			until = f.Deadline.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\n", f.RegistrationID, f.Flow, f.Tenant, f.WaitingFor,
			now.Sub(f.UpdatedAt).Round(time.Second), until)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d waiting\n", len(flows))
}
