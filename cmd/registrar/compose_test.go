package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/registrar-dev/registrar/config"
	"github.com/registrar-dev/registrar/simulators"
	"github.com/registrar-dev/registrar/vendors/cloudsuite"
	"github.com/registrar-dev/registrar/vendors/engage"
	"github.com/registrar-dev/registrar/vendors/marta"
	"github.com/registrar-dev/registrar/vendors/resamania"
)

// Docker is not available where the tests run, so these tests check what
// can be checked without it: compose.yaml, the registrar configuration it
// mounts, and the Dockerfile agree with each other and with the service.

const repoRoot = "../.."

// compose is the part of the Compose file the tests look at.
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     []string       `yaml:"command"`
	Entrypoint  any            `yaml:"entrypoint"`
	Ports       []any          `yaml:"ports"`
	Volumes     []any          `yaml:"volumes"`
	Environment any            `yaml:"environment"`
	DependsOn   any            `yaml:"depends_on"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	NetworkMode string         `yaml:"network_mode"`
}

func readCompose(t *testing.T) (compose, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c, top
}

func TestComposeFile(t *testing.T) {
	c, top := readCompose(t)
	if _, ok := top["version"]; ok {
		t.Error("compose.yaml has a version key: the Compose specification has none")
	}
	for _, name := range []string{"nats", "postgres", "vendorsim", "registrar"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %q", name)
		}
	}

	t.Run("ports on loopback only", func(t *testing.T) {
		for name, s := range c.Services {
			if s.NetworkMode == "host" {
				t.Errorf("%s: network_mode host publishes every port on every interface", name)
			}
			for _, p := range s.Ports {
				switch p := p.(type) {
				case string:
					if !strings.HasPrefix(p, "127.0.0.1:") {
						t.Errorf("%s: port %q is not bound to 127.0.0.1", name, p)
					}
				case map[string]any:
					if p["host_ip"] != "127.0.0.1" {
						t.Errorf("%s: port %v is not bound to 127.0.0.1", name, p)
					}
				default:
					t.Errorf("%s: port %v (%T) is not bound to 127.0.0.1", name, p, p)
				}
			}
		}
	})

	t.Run("health checks", func(t *testing.T) {
		for _, name := range []string{"nats", "postgres", "vendorsim", "registrar"} {
			if healthcheck(c.Services[name]) == "" {
				t.Errorf("%s has no health check", name)
			}
		}
		if hc := healthcheck(c.Services["nats"]); !strings.Contains(hc, ":8222/healthz") {
			t.Errorf("nats health check %q is not on the monitoring port's /healthz", hc)
		}
		if hc := healthcheck(c.Services["postgres"]); !strings.Contains(hc, "pg_isready") {
			t.Errorf("postgres health check %q does not use pg_isready", hc)
		}
		if hc := healthcheck(c.Services["registrar"]); !strings.Contains(hc, "/readyz") {
			t.Errorf("registrar health check %q is not /readyz", hc)
		}
		// A service others wait for with service_healthy must have a
		// health check, or it never becomes healthy.
		for name, s := range c.Services {
			for dep, cond := range dependsOn(t, name, s) {
				if _, ok := c.Services[dep]; !ok {
					t.Errorf("%s depends on %s, which is not a service", name, dep)
				}
				if cond == "service_healthy" && healthcheck(c.Services[dep]) == "" {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			}
		}
		deps := dependsOn(t, "registrar", c.Services["registrar"])
		for _, dep := range []string{"nats", "postgres"} {
			if deps[dep] != "service_healthy" {
				t.Errorf("registrar does not wait for %s to be healthy (depends_on: %v)", dep, deps)
			}
		}
	})

	t.Run("nats", func(t *testing.T) {
		s := c.Services["nats"]
		if !strings.HasPrefix(s.Image, "nats:2.15") {
			t.Errorf("image %q, want nats:2.15", s.Image)
		}
		cmd := strings.Join(s.Command, " ")
		for _, arg := range []string{"-js", "-sd /data", "-m 8222"} {
			if !strings.Contains(cmd, arg) {
				t.Errorf("command %q lacks %s", cmd, arg)
			}
		}
		checkNamedVolume(t, c, "nats", "/data")
	})

	t.Run("postgres", func(t *testing.T) {
		s := c.Services["postgres"]
		if !strings.HasPrefix(s.Image, "postgres:15") {
			t.Errorf("image %q, want postgres:15", s.Image)
		}
		env := environment(t, "postgres", s)
		if env["POSTGRES_DB"] != "registrar" || env["POSTGRES_PASSWORD"] == "" {
			t.Errorf("environment %v: want POSTGRES_DB registrar and a POSTGRES_PASSWORD", env)
		}
		checkNamedVolume(t, c, "postgres", "/var/lib/postgresql/data")
	})

	t.Run("vendorsim", func(t *testing.T) {
		s := c.Services["vendorsim"]
		if s.Build == nil {
			t.Error("vendorsim is not built from the Dockerfile")
		}
		if len(s.Command) == 0 || s.Command[0] != "vendorsim" {
			t.Fatalf("command %q, want vendorsim", s.Command)
		}
		// Every simulator listens on all interfaces of the container, on
		// a port compose publishes.
		for _, flag := range []string{"--resamania", "--marta", "--engage", "--cloudsuite"} {
			host, port, err := net.SplitHostPort(flagValue(s.Command, flag))
			if err != nil || host != "0.0.0.0" {
				t.Errorf("command %q: %s must be 0.0.0.0:PORT", s.Command, flag)
				continue
			}
			if !publishes(s, port) {
				t.Errorf("the %s port %s is not published", flag, port)
			}
		}
	})
}

// TestComposeRegistrarConfig loads the configuration file compose.yaml
// mounts into the registrar container, with the environment compose.yaml
// gives it, as `registrar serve` in the container would.
func TestComposeRegistrarConfig(t *testing.T) {
	c, _ := readCompose(t)
	s, ok := c.Services["registrar"]
	if !ok {
		t.Fatal("compose.yaml has no service registrar")
	}
	if s.Build == nil {
		t.Error("registrar is not built from the Dockerfile")
	}
	if s.Entrypoint != nil {
		t.Errorf("registrar overrides the image's entrypoint: %v", s.Entrypoint)
	}

	// The command is the Dockerfile's CMD unless compose.yaml overrides it.
	cmd := s.Command
	if cmd == nil {
		cmd = readDockerfile(t).cmd
	}
	cfgPath := flagValue(cmd, "--config")
	if len(cmd) == 0 || cmd[0] != "serve" || cfgPath == "" {
		t.Fatalf("registrar's command %q is not serve --config FILE", cmd)
	}

	// The file mounted there.
	var source string
	for _, v := range s.Volumes {
		src, target, ro := volumeMount(v)
		if target == cfgPath {
			source = src
			if !ro {
				t.Errorf("the configuration is mounted read-write: %v", v)
			}
		}
	}
	if source == "" {
		t.Fatalf("nothing of registrar's volumes is mounted at %s", cfgPath)
	}
	if !strings.HasPrefix(source, "./") {
		t.Fatalf("the configuration is mounted from %q, not a file next to compose.yaml", source)
	}
	path := filepath.Join(repoRoot, filepath.FromSlash(source))
	if filepath.ToSlash(source) != "./deploy/registrar.yaml" {
		t.Errorf("the configuration is mounted from %s, want ./deploy/registrar.yaml", source)
	}

	env := environment(t, "registrar", s)
	cfg, err := config.Load(path, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("with compose.yaml's environment: %v", err)
	}

	// Every value that points at another service agrees with that service.
	if cfg.NATS.URL != "nats://nats:4222" {
		t.Errorf("nats.url %q, want nats://nats:4222", cfg.NATS.URL)
	}
	pgEnv := environment(t, "postgres", c.Services["postgres"])
	wantDSN := fmt.Sprintf("postgres://postgres:%s@postgres:5432/%s?sslmode=disable", pgEnv["POSTGRES_PASSWORD"], pgEnv["POSTGRES_DB"])
	if cfg.Store.DSN != wantDSN {
		t.Errorf("store.dsn %q, want %q (the postgres service's database and password)", cfg.Store.DSN, wantDSN)
	}
	host, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil || host != "0.0.0.0" {
		t.Errorf("admin.listen %q: want 0.0.0.0:PORT, reachable from outside the container", cfg.Admin.Listen)
	}
	if hc := healthcheck(s); !strings.Contains(hc, "127.0.0.1:"+port+"/readyz") {
		t.Errorf("health check %q does not ask the admin port %s", hc, port)
	}
	if !publishes(s, port) {
		t.Errorf("the admin port %s is not published (ports %v)", port, s.Ports)
	}
	if !slices.Contains(readDockerfile(t).expose, port) {
		t.Errorf("the Dockerfile does not EXPOSE the admin port %s", port)
	}

	acme, ok := cfg.Tenants["acme"]
	if !ok || acme.Resamania == nil {
		t.Fatalf("no tenant acme with a resamania account: %+v", cfg.Tenants)
	}
	r := acme.Resamania
	u, err := url.Parse(r.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	simCmd := c.Services["vendorsim"].Command
	_, simPort, _ := net.SplitHostPort(flagValue(simCmd, "--resamania"))
	if u.Scheme != "http" || u.Hostname() != "vendorsim" || u.Port() != simPort || u.Path != "/resa2-staging" {
		t.Errorf("resamania baseURL %q, want http://vendorsim:%s/resa2-staging", r.BaseURL, simPort)
	}
	if hc := healthcheck(c.Services["vendorsim"]); !strings.Contains(hc, ":"+simPort+"/") {
		t.Errorf("vendorsim health check %q is not on its port %s", hc, simPort)
	}
	var account *resamania.SimAccount
	for _, a := range resamania.DefaultSimConfig().Accounts {
		if a.ClientToken == r.ClientToken {
			account = &a
		}
	}
	if account == nil {
		t.Fatalf("clientToken %q is not an account of the simulator", r.ClientToken)
	}
	if r.ClientToken != "demoapi" || r.ClientID != account.ClientID || r.ClientSecret.Reveal() != account.ClientSecret ||
		r.APIKey.Reveal() != account.APIKey {
		t.Errorf("the resamania account is not the simulator's %s account", account.ClientToken)
	}

	// The other vendors: the simulators' demo accounts, on their ports.
	simURL := func(flag, path string) string {
		_, port, _ := net.SplitHostPort(flagValue(simCmd, flag))
		return "http://vendorsim:" + port + path
	}
	if m := acme.Marta; m == nil || m.BaseURL != simURL("--marta", "") || m.APIKey.Reveal() != marta.DemoAPIKey {
		t.Errorf("tenant acme's marta account is not the MARTA simulator's: %+v", m)
	}
	if e := acme.Engage; e == nil || e.BaseURL != simURL("--engage", "/api/rest/v19") || e.Username != engage.DemoUsername || e.Password.Reveal() != engage.DemoPassword {
		t.Errorf("tenant acme's engage account is not the Engage simulator's: %+v", e)
	}
	if cs := acme.CloudSuite; cs == nil || cs.BaseURL != simURL("--cloudsuite", "") || cs.TokenURL != simURL("--cloudsuite", simulators.CloudSuiteTokenPath) ||
		cs.ClientID != cloudsuite.DemoClientID || cs.ClientSecret.Reveal() != cloudsuite.DemoClientSecret || cs.Origin != cloudsuite.DemoOrigin {
		t.Errorf("tenant acme's cloudsuite account is not the CloudSuite simulator's: %+v", cs)
	}

	// The secrets come from the environment, not from the file.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{account.ClientSecret, account.APIKey, ":" + pgEnv["POSTGRES_PASSWORD"] + "@",
		marta.DemoAPIKey, engage.DemoPassword, cloudsuite.DemoClientSecret} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("%s holds the secret %q: use ${VAR}", source, secret)
		}
	}
	if _, err := config.Load(path, nil); err == nil {
		t.Errorf("%s loads without any environment: its secrets are not ${VAR}s", source)
	}
}

func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if len(d.stages) < 2 {
		t.Errorf("%d stages, want a build stage and a runtime stage", len(d.stages))
	}
	if len(d.stages) > 0 && !strings.HasPrefix(d.stages[0], "golang:1.26") {
		t.Errorf("the build stage is FROM %s, want golang:1.26", d.stages[0])
	}
	if d.user == "" || d.user == "root" || d.user == "0" || strings.HasPrefix(d.user, "0:") || strings.HasPrefix(d.user, "root:") {
		t.Errorf("the final stage runs as %q: want a non-root USER", d.user)
	}
	if !slices.Equal(d.entrypoint, []string{"registrar"}) {
		t.Errorf("ENTRYPOINT %q, want [registrar]", d.entrypoint)
	}
	if !slices.Equal(d.cmd, []string{"serve", "--config", "/etc/registrar/registrar.yaml"}) {
		t.Errorf("CMD %q, want serve --config /etc/registrar/registrar.yaml", d.cmd)
	}
	for _, s := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/registrar", "ca-certificates"} {
		if !strings.Contains(d.text, s) {
			t.Errorf("the Dockerfile does not contain %s", s)
		}
	}
	// compose.yaml's health checks run wget in this image: the final stage
	// must have one (distroless and scratch do not).
	c, _ := readCompose(t)
	for _, name := range []string{"registrar", "vendorsim"} {
		if strings.Contains(healthcheck(c.Services[name]), "wget") && !strings.HasPrefix(d.final(), "alpine") {
			t.Errorf("%s's health check runs wget, but the final stage is FROM %s", name, d.final())
		}
	}

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "**/*.test"} {
		if !slices.Contains(strings.Fields(string(ignore)), p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}

// dockerfile is what the tests read of the Dockerfile.
type dockerfile struct {
	text       string
	stages     []string // the image of each FROM, with ARG defaults substituted
	user       string   // the final stage's USER
	entrypoint []string
	cmd        []string
	expose     []string
}

func (d dockerfile) final() string {
	if len(d.stages) == 0 {
		return ""
	}
	return d.stages[len(d.stages)-1]
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{text: string(data)}
	args := map[string]string{}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(d.text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			if k, v, ok := strings.Cut(rest, "="); ok && len(d.stages) == 0 {
				args[k] = v
			}
		case "FROM":
			image := strings.Fields(rest)[0]
			for k, v := range args {
				image = strings.ReplaceAll(image, "${"+k+"}", v)
			}
			d.stages = append(d.stages, image)
			d.user = "" // USER does not carry over to the next stage
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			d.entrypoint = execForm(t, rest)
		case "CMD":
			d.cmd = execForm(t, rest)
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				d.expose = append(d.expose, strings.TrimSuffix(p, "/tcp"))
			}
		}
	}
	return d
}

// execForm parses the JSON array form of ENTRYPOINT and CMD.
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil || !strings.HasPrefix(s, "[") {
		t.Errorf("%q is not in exec form (a JSON array): a shell would be PID 1 and not forward signals", s)
	}
	return out
}

// healthcheck returns a service's health check command as one string, or
// "" when it has none (or disables it).
func healthcheck(s composeService) string {
	if s.Healthcheck == nil || s.Healthcheck["disable"] == true {
		return ""
	}
	switch test := s.Healthcheck["test"].(type) {
	case string:
		return test
	case []any:
		parts := make([]string, len(test))
		for i, p := range test {
			parts[i] = fmt.Sprint(p)
		}
		if len(parts) > 0 && parts[0] == "NONE" {
			return ""
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// dependsOn returns the services s depends on with their conditions.
func dependsOn(t *testing.T, name string, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch d := s.DependsOn.(type) {
	case nil:
	case []any:
		for _, dep := range d {
			out[fmt.Sprint(dep)] = "service_started"
		}
	case map[string]any:
		for dep, v := range d {
			cond := "service_started"
			if m, ok := v.(map[string]any); ok && m["condition"] != nil {
				cond = fmt.Sprint(m["condition"])
			}
			out[dep] = cond
		}
	default:
		t.Errorf("%s: depends_on %v (%T)", name, d, d)
	}
	return out
}

// environment returns a service's environment (map or list syntax). Its
// values must be literal: Compose would interpolate a $.
func environment(t *testing.T, name string, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				t.Errorf("%s: %s has no value here: it would come from the host's environment", name, k)
				continue
			}
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, ok := strings.Cut(fmt.Sprint(kv), "=")
			if !ok {
				t.Errorf("%s: %s has no value here: it would come from the host's environment", name, k)
			}
			out[k] = v
		}
	default:
		t.Errorf("%s: environment %v (%T)", name, e, e)
	}
	for k, v := range out {
		if strings.Contains(v, "$") {
			t.Errorf("%s: %s=%q would be interpolated by Compose", name, k, v)
		}
	}
	return out
}

// volumeMount returns the source and target of a volume (short or long
// syntax).
func volumeMount(v any) (source, target string, readOnly bool) {
	switch v := v.(type) {
	case string:
		parts := strings.Split(v, ":")
		if len(parts) == 1 {
			return "", parts[0], false
		}
		return parts[0], parts[1], len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
	case map[string]any:
		src, _ := v["source"].(string)
		dst, _ := v["target"].(string)
		ro, _ := v["read_only"].(bool)
		return src, dst, ro
	}
	return "", "", false
}

// checkNamedVolume checks that service keeps target in a named volume
// declared at the top level.
func checkNamedVolume(t *testing.T, c compose, service, target string) {
	t.Helper()
	for _, v := range c.Services[service].Volumes {
		src, dst, _ := volumeMount(v)
		if dst != target {
			continue
		}
		if src == "" || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "~") || strings.Contains(src, "/") {
			t.Errorf("%s: %s is mounted from %q, not a named volume", service, target, src)
		} else if _, ok := c.Volumes[src]; !ok {
			t.Errorf("%s: volume %q is not declared under volumes", service, src)
		}
		return
	}
	t.Errorf("%s: no volume at %s", service, target)
}

// publishes reports whether s publishes the container port.
func publishes(s composeService, port string) bool {
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			parts := strings.Split(p, ":")
			if strings.TrimSuffix(parts[len(parts)-1], "/tcp") == port {
				return true
			}
		case map[string]any:
			if fmt.Sprint(p["target"]) == port {
				return true
			}
		}
	}
	return false
}

// flagValue returns the value of --name in args ("--name v" or
// "--name=v").
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
