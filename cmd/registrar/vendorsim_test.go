package main

import (
	"encoding/json"
	"net"
	"net/http"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

func TestVendorSim(t *testing.T) {
	tests := []struct {
		name   string
		listen func(port string) string
		args   func(addr string) []string
	}{
		{name: "loopback", listen: func(p string) string { return "127.0.0.1:" + p },
			args: func(a string) []string {
				return []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--resamania", a}
			}},
		// compose.yaml's form: every interface, so that other containers
		// reach it.
		{name: "all interfaces", listen: func(p string) string { return "0.0.0.0:" + p },
			args: func(a string) []string {
				return []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--resamania", a}
			}},
		{name: "flag=value", listen: func(p string) string { return "127.0.0.1:" + p },
			args: func(a string) []string {
				return []string{"vendorsim", "--marta=127.0.0.1:0", "--engage=127.0.0.1:0", "--resamania=" + a}
			}},
	}
	urlLine := regexp.MustCompile(`(?m)^Resamania simulator: (http://\S+)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, port, err := net.SplitHostPort(freeAddr(t))
			if err != nil {
				t.Fatal(err)
			}
			addr := tt.listen(port)
			sim := start(t, tt.args(addr)...)
			var url string
			sim.waitUntil(t, "the simulator's URL", 10*time.Second, func() bool {
				m := urlLine.FindStringSubmatch(sim.stdout.String())
				if m != nil {
					url = m[1]
				}
				return m != nil
			})
			u, err := neturl.Parse(url)
			if err != nil {
				t.Fatal(err)
			}
			if u.Port() != port || u.Path != simulators.ResamaniaEnv {
				t.Errorf("URL %q, want port %s and path %s", url, port, simulators.ResamaniaEnv)
			}
			// The URL is one a client on this host can dial: an
			// unspecified listen address is shown as 127.0.0.1.
			if h := u.Hostname(); h != "127.0.0.1" {
				t.Errorf("URL %q for listen address %s", url, addr)
			}
			out := sim.stdout.String()
			def := resamania.DefaultSimConfig().Accounts[0]
			for _, s := range []string{"account " + def.ClientToken, "clientId " + def.ClientID, "clientSecret " + def.ClientSecret,
				"apiKey " + def.APIKey, resamania.ClubIRI(def.ClientToken, def.Clubs[0].ID), "/_sim/faults"} {
				if !strings.Contains(out, s) {
					t.Errorf("stdout does not contain %q:\n%s", s, out)
				}
			}

			// Reach it the way a client on this host does.
			base := "http://127.0.0.1:" + port + simulators.ResamaniaEnv
			code, body := get(base + "/_sim/accounts")
			if code != http.StatusOK {
				t.Fatalf("GET /_sim/accounts: %d %s", code, body)
			}
			if !json.Valid([]byte(body)) || !strings.Contains(body, def.ClientToken) {
				t.Errorf("GET /_sim/accounts: %s", body)
			}
			if strings.Contains(body, def.ClientSecret) {
				t.Errorf("GET /_sim/accounts shows the client secret: %s", body)
			}
			// compose.yaml's health check asks at the root, without the env.
			root := strings.TrimSuffix(base, simulators.ResamaniaEnv)
			if code, body := get(root + "/_sim/accounts"); code != http.StatusOK {
				t.Errorf("GET %s/_sim/accounts: %d %s", root, code, body)
			}

			if code := sim.stop(t); code != 0 {
				t.Errorf("vendorsim exited with %d\nstderr:\n%s", code, sim.stderr)
			}
			if code, _ := get(base + "/_sim/accounts"); code != 0 {
				t.Errorf("the simulator still answers after the command returned: %d", code)
			}
		})
	}
}

func TestVendorSimAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--resamania", ln.Addr().String()}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("exit %d, stderr %q", code, &stderr)
	}
}
