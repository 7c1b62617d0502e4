package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/outbox"
	"github.com/registrar-dev/registrar/service"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("REGISTRAR_CONFIG"), "configuration file (YAML); empty: embedded defaults")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path, os.LookupEnv); err != nil {
			return err
		}
	}
	log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)

	svc, err := service.New(ctx, service.Options{Config: cfg, Logger: log, FaultHook: faultHook(os.Getenv("REGISTRAR_FAULT_KILL_AT"), stderr)})
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Run(ctx)
}

// faultHook returns an outbox fault hook that kills the process with
// SIGKILL at the named point (outbox.FaultBeforePublish or
// outbox.FaultAfterPublish) of the first round that forwards an event: the
// crash drills use it to stop the process exactly between the store commit
// and the publish, or between the publish and the outbox clean-up.
func faultHook(point string, stderr io.Writer) func(string, []outbox.Record) {
	switch point {
	case "":
		return nil
	case outbox.FaultBeforePublish, outbox.FaultAfterPublish:
	default:
		fmt.Fprintf(stderr, "REGISTRAR_FAULT_KILL_AT=%q is not a fault point; ignored\n", point)
		return nil
	}
	return service.KillAt(point)
}
