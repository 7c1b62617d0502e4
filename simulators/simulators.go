// Package simulators runs the vendor simulators on loopback HTTP listeners
// and gives the configuration that points registrar at them. The demo, the
// benchmarks, the end-to-end tests and `registrar vendorsim` use it; each
// simulator itself lives in its vendor's package.
package simulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/engage"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// ResamaniaEnv is the path prefix (the vendor's "env") under which the
// Resamania simulator is reached, as on the real gateway.
const ResamaniaEnv = "/resa2-staging"

// Config configures the simulators.
type Config struct {
	// Resamania is the Resamania simulator's configuration; the zero value
	// means resamania.DefaultSimConfig().
	Resamania *resamania.SimConfig
	// ResamaniaListen is host:port; default 127.0.0.1:0 (a free port).
	ResamaniaListen string
	// Marta is the MARTA simulator's configuration; nil means
	// marta.DefaultSimConfig().
	Marta *marta.SimConfig
	// MartaListen is host:port; default 127.0.0.1:0.
	MartaListen string
	// Engage is the Mapp Engage simulator's configuration; nil means
	// engage.DefaultSimConfig().
	Engage *engage.SimConfig
	// EngageListen is host:port; default 127.0.0.1:0.
	EngageListen string
	// CloudSuite is the CloudSuite simulator's configuration; nil means
	// cloudsuite.DefaultSimConfig().
	CloudSuite *cloudsuite.SimConfig
	// CloudSuiteListen is host:port; default 127.0.0.1:0.
	CloudSuiteListen string
}

// Set is a running set of simulators.
type Set struct {
	Resamania     *resamania.Simulator
	ResamaniaURL  string // base URL including the env prefix
	Marta         *marta.Simulator
	MartaURL      string
	Engage        *engage.Simulator
	EngageURL     string // base URL including /api/rest/v19
	CloudSuite    *cloudsuite.Simulator
	CloudSuiteURL string // API base URL (the token endpoint is under it too)

	resamaniaCfg  resamania.SimConfig
	martaCfg      marta.SimConfig
	engageCfg     engage.SimConfig
	cloudsuiteCfg cloudsuite.SimConfig
	servers       []*http.Server
}

// Start starts every simulator.
func Start(cfg Config) (*Set, error) {
	s := &Set{}
	rc := resamania.DefaultSimConfig()
	if cfg.Resamania != nil {
		rc = *cfg.Resamania
	}
	s.resamaniaCfg = rc
	s.Resamania = resamania.NewSimulator(rc)
	addr, err := s.serve(cfg.ResamaniaListen, s.Resamania)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("resamania simulator: %w", err)
	}
	s.ResamaniaURL = "http://" + reachable(addr) + ResamaniaEnv

	mc := marta.DefaultSimConfig()
	if cfg.Marta != nil {
		mc = *cfg.Marta
	}
	s.martaCfg = mc
	s.Marta = marta.NewSimulator(mc)
	addr, err = s.serve(cfg.MartaListen, s.Marta)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("marta simulator: %w", err)
	}
	s.MartaURL = "http://" + reachable(addr)

	ec := engage.DefaultSimConfig()
	if cfg.Engage != nil {
		ec = *cfg.Engage
	}
	s.engageCfg = ec
	s.Engage = engage.NewSimulator(ec)
	addr, err = s.serve(cfg.EngageListen, s.Engage)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("engage simulator: %w", err)
	}
	s.EngageURL = "http://" + reachable(addr) + "/api/rest/v19"

	cc := cloudsuite.DefaultSimConfig()
	if cfg.CloudSuite != nil {
		cc = *cfg.CloudSuite
	}
	s.cloudsuiteCfg = cc
	s.CloudSuite = cloudsuite.NewSimulator(cc)
	addr, err = s.serve(cfg.CloudSuiteListen, s.CloudSuite)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("cloudsuite simulator: %w", err)
	}
	s.CloudSuiteURL = "http://" + reachable(addr)
	return s, nil
}

func (s *Set) serve(listen string, h http.Handler) (string, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed: requests to it fail and show it
		}
	}()
	return ln.Addr().String(), nil
}

// MartaTenant is the tenant configuration of the MARTA simulator's API key.
func (s *Set) MartaTenant() *config.Marta {
	return &config.Marta{BaseURL: s.MartaURL, APIKey: secret.New(s.martaCfg.APIKey)}
}

// EngageTenant is the tenant configuration of the Engage simulator's user.
func (s *Set) EngageTenant() *config.Engage {
	return &config.Engage{BaseURL: s.EngageURL, Username: s.engageCfg.Username, Password: secret.New(s.engageCfg.Password)}
}

// CloudSuiteTenant is the tenant configuration of the CloudSuite
// simulator's client for its first origin, polled every pollInterval.
func (s *Set) CloudSuiteTenant(pollInterval time.Duration) *config.CloudSuite {
	origin := cloudsuite.DemoOrigin
	if len(s.cloudsuiteCfg.Origins) > 0 {
		origin = s.cloudsuiteCfg.Origins[0]
	}
	return &config.CloudSuite{BaseURL: s.CloudSuiteURL, TokenURL: s.CloudSuiteURL + CloudSuiteTokenPath,
		ClientID: s.cloudsuiteCfg.ClientID, ClientSecret: secret.New(s.cloudsuiteCfg.ClientSecret),
		Origin: origin, PollInterval: pollInterval}
}

// CloudSuiteTokenPath is where the CloudSuite simulator's token endpoint
// is, as on CloudSuite's identity server.
const CloudSuiteTokenPath = "/realms/CloudSuite/protocol/openid-connect/token"

// reachable turns a listener's address into one a client on this host can
// dial: an unspecified host (0.0.0.0, ::) becomes 127.0.0.1.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Close stops the simulators' listeners.
func (s *Set) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
}

// ResamaniaTenant is the tenant configuration of the simulator's account
// with the given clientToken.
func (s *Set) ResamaniaTenant(clientToken string) (*config.Resamania, error) {
	for _, a := range s.resamaniaCfg.Accounts {
		if a.ClientToken == clientToken {
			return &config.Resamania{
				BaseURL:      s.ResamaniaURL,
				ClientToken:  a.ClientToken,
				ClientID:     a.ClientID,
				ClientSecret: secret.New(a.ClientSecret),
				APIKey:       secret.New(a.APIKey),
				// The client limits itself as the simulator does (off when
				// the simulator's limits are off).
				RateLimit: config.RateLimit{PerMinute: s.resamaniaCfg.RateLimit.PerMinute, SpikeArrest: s.resamaniaCfg.RateLimit.SpikeArrest},
			}, nil
		}
	}
	return nil, fmt.Errorf("the resamania simulator has no account %q", clientToken)
}
