// Command registrar runs customer registrations against vendor APIs, driven
// by commands over NATS JetStream. main is the composition root: it reads
// the configuration, builds the parts and runs them until a signal.
//
//	registrar demo                          everything embedded, sample flows, exit 0 when all end as expected
//	registrar serve [--config FILE]         the service
//	registrar publish --subject S FILE|-    publish a command (for integrators)
//	registrar vendorsim                     the vendor simulators, standalone
//	registrar dlq ls|show|replay|edit|purge the dead letters (for operators)
//	registrar status ID | --waiting         a flow's state, or the waiting flows (for operators)
//	registrar bench                         throughput and latency, with a raw JetStream baseline
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `registrar — customer registrations against vendor APIs over NATS JetStream

Usage:
  registrar demo      [--verbose] [--timeout 60s]
  registrar serve     [--config FILE]          (or REGISTRAR_CONFIG)
  registrar publish   --subject SUBJECT [--nats URL] [--msg-id ID] FILE|-
  registrar vendorsim [--resamania 127.0.0.1:8081]
  registrar dlq       ls|show|replay|edit|purge … [--nats URL | --config FILE]
  registrar status    ID | --waiting [otp|activation]   [--admin HOST:PORT] [--json]
  registrar bench     [--n 2000] [--vendor-latency 0] [--in-flight N] [--json]

Run 'registrar COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command named by args[0] until it ends or the process gets
// SIGINT or SIGTERM, and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdin, stdout, stderr)
}

// runContext is run with the context that stops long-running commands
// (serve, vendorsim) given by the caller: tests cancel it instead of
// sending a signal. Exit codes: 0 success (and --help), 1 failure, 2 usage.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "publish":
		err = runPublish(ctx, args[1:], stdin, stdout, stderr)
	case "vendorsim":
		err = runVendorSim(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = runDLQ(ctx, args[1:], stdin, stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "registrar: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "registrar %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage")

// parseFlags parses a command's flags. A malformed or unknown flag is a
// usage error (exit 2; the flag set has printed the problem and the
// flags); --help is flag.ErrHelp (exit 0).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
