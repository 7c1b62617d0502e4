package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

func runVendorSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resa := fs.String("resamania", "127.0.0.1:8081", "Resamania simulator listen address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	simCfg := resamania.DefaultSimConfig()
	sims, err := simulators.Start(simulators.Config{Resamania: &simCfg, ResamaniaListen: *resa})
	if err != nil {
		return err
	}
	defer sims.Close()
	fmt.Fprintf(stdout, "Resamania simulator: %s\n", sims.ResamaniaURL)
	for _, a := range simCfg.Accounts {
		fmt.Fprintf(stdout, "  account %s: clientId %s, clientSecret %s, apiKey %s\n", a.ClientToken, a.ClientID, a.ClientSecret, a.APIKey)
		for _, c := range a.Clubs {
			fmt.Fprintf(stdout, "    club %s (network node %s) %s\n", resamania.ClubIRI(a.ClientToken, c.ID),
				resamania.NetworkNodeIRI(a.ClientToken, c.NetworkNodeID), c.Name)
		}
	}
	fmt.Fprintf(stdout, "  operator endpoints: %s/_sim/faults, /_sim/requests, /_sim/contacts\n", sims.ResamaniaURL)
	<-ctx.Done()
	return nil
}
