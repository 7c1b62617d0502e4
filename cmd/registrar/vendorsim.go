package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

func runVendorSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resa := fs.String("resamania", "127.0.0.1:8081", "Resamania simulator listen address")
	martaAddr := fs.String("marta", "127.0.0.1:8082", "MARTA simulator listen address")
	engageAddr := fs.String("engage", "127.0.0.1:8083", "Mapp Engage simulator listen address")
	cloudsuiteAddr := fs.String("cloudsuite", "127.0.0.1:8084", "CloudSuite simulator listen address (API and token endpoint)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	simCfg := resamania.DefaultSimConfig()
	sims, err := simulators.Start(simulators.Config{Resamania: &simCfg, ResamaniaListen: *resa, MartaListen: *martaAddr, EngageListen: *engageAddr,
		CloudSuiteListen: *cloudsuiteAddr})
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
	fmt.Fprintf(stdout, "  operator endpoints: %s/_sim/faults, /_sim/requests, /_sim/contacts, /_sim/sms\n", sims.ResamaniaURL)
	mt := sims.MartaTenant()
	fmt.Fprintf(stdout, "MARTA simulator: %s\n  x-api-key %s, campaign %s\n  operator endpoints: %s/_sim/faults, /_sim/requests, /_sim/customers, /_sim/codes\n",
		sims.MartaURL, mt.APIKey.Reveal(), marta.DemoCampaignID, sims.MartaURL)
	et := sims.EngageTenant()
	fmt.Fprintf(stdout, "Mapp Engage simulator: %s\n  user %s, password %s\n  operator endpoints: /_sim/faults, /_sim/requests, /_sim/contacts\n",
		sims.EngageURL, et.Username, et.Password.Reveal())
	ct := sims.CloudSuiteTenant(0)
	fmt.Fprintf(stdout, "CloudSuite simulator: %s\n  token URL %s, clientId %s, clientSecret %s, origin %s\n"+
		"  operator endpoints: /_sim/faults, /_sim/requests, /_sim/origins/%s/users (POST a user to register it), /_sim/origins/%s/customers, /_sim/activations\n",
		sims.CloudSuiteURL, ct.TokenURL, ct.ClientID, ct.ClientSecret.Reveal(), ct.Origin, ct.Origin, ct.Origin)
	<-ctx.Done()
	return nil
}
