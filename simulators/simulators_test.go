package simulators

import (
	"net/http"
	"strings"
	"testing"

	"github.com/registrar-dev/registrar/vendors/resamania"
)

func TestResamaniaTenantPointsAtTheSimulator(t *testing.T) {
	sc := resamania.DefaultSimConfig()
	sc.RateLimit = resamania.RateLimit{PerMinute: -1, SpikeArrest: -1}
	s, err := Start(Config{Resamania: &sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acct := sc.Accounts[0]
	tc, err := s.ResamaniaTenant(acct.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if tc.BaseURL != s.ResamaniaURL || !strings.HasSuffix(tc.BaseURL, ResamaniaEnv) || tc.ClientID != acct.ClientID ||
		tc.ClientSecret.Reveal() != acct.ClientSecret || tc.APIKey.Reveal() != acct.APIKey {
		t.Errorf("tenant = %+v", tc)
	}
	// The client's own limits follow the simulator's: off here.
	if tc.RateLimit.PerMinute != -1 || tc.RateLimit.SpikeArrest != -1 {
		t.Errorf("client rate limit = %+v, want off like the simulator's", tc.RateLimit)
	}
	if _, err := s.ResamaniaTenant("nobody"); err == nil {
		t.Error("an unknown account gave a tenant")
	}
	resp, err := http.Get(s.ResamaniaURL + "/_sim/accounts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /_sim/accounts: %d", resp.StatusCode)
	}
}

func TestReachable(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:80": "127.0.0.1:80", "[::]:80": "127.0.0.1:80", "127.0.0.1:9": "127.0.0.1:9", "x": "x"} {
		if got := reachable(in); got != want {
			t.Errorf("reachable(%q) = %q, want %q", in, got, want)
		}
	}
}
