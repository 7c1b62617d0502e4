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
				return []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--cloudsuite", "127.0.0.1:0", "--resamania", a}
			}},
		// compose.yaml's form: every interface, so that other containers
		// reach it.
		{name: "all interfaces", listen: func(p string) string { return "0.0.0.0:" + p },
			args: func(a string) []string {
				return []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--cloudsuite", "127.0.0.1:0", "--resamania", a}
			}},
		{name: "flag=value", listen: func(p string) string { return "127.0.0.1:" + p },
			args: func(a string) []string {
				return []string{"vendorsim", "--marta=127.0.0.1:0", "--engage=127.0.0.1:0", "--cloudsuite=127.0.0.1:0", "--resamania=" + a}
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
	code := runContext(t.Context(), []string{"vendorsim", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--cloudsuite", "127.0.0.1:0", "--resamania", ln.Addr().String()}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("exit %d, stderr %q", code, &stderr)
	}
}

// TestVendorSimCloudSuite gets a token from the CloudSuite simulator
// vendorsim runs, with the credentials it prints, and lists the users of
// its origin.
func TestVendorSimCloudSuite(t *testing.T) {
	addr := freeAddr(t)
	sim := start(t, "vendorsim", "--resamania", "127.0.0.1:0", "--marta", "127.0.0.1:0", "--engage", "127.0.0.1:0", "--cloudsuite", addr)
	line := regexp.MustCompile(`(?m)^  token URL (\S+), clientId (\S+), clientSecret (\S+), origin (\S+)$`)
	var m []string
	sim.waitUntil(t, "the CloudSuite simulator's credentials", 10*time.Second, func() bool {
		m = line.FindStringSubmatch(sim.stdout.String())
		return m != nil
	})
	if !strings.Contains(sim.stdout.String(), "CloudSuite simulator: http://"+addr) {
		t.Errorf("stdout:\n%s", sim.stdout.String())
	}
	resp, err := http.PostForm(m[1], neturl.Values{"grant_type": {"client_credentials"}, "client_id": {m[2]}, "client_secret": {m[3]}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/origin/"+m[4]+"/user/?registration=new&inactive=true", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Count   *int `json:"count"`
		Results []any
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || page.Count == nil {
		t.Errorf("user list: %d %v", resp.StatusCode, err)
	}
	if code := sim.stop(t); code != 0 {
		t.Errorf("vendorsim exited with %d", code)
	}
}
