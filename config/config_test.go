package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/registrar-dev/registrar/events"
)

// Config is what the command decoder checks tenants with.
var _ events.TenantChecker = (*Config)(nil)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// exampleEnv gives every variable example.yaml uses; the secret values are
// easy to look for.
func exampleEnv() map[string]string {
	return map[string]string{
		"RESAMANIA_CLIENT_ID":      "resa-client-id",
		"RESAMANIA_CLIENT_SECRET":  "SECRET-resa-client-secret",
		"RESAMANIA_API_KEY":        "SECRET-resa-api-key",
		"MARTA_API_KEY":            "SECRET-marta-api-key",
		"ENGAGE_USER":              "engage-user",
		"ENGAGE_PASSWORD":          "SECRET-engage-password",
		"CLOUDSUITE_CLIENT_ID":     "cs-client-id",
		"CLOUDSUITE_CLIENT_SECRET": "SECRET-cs-client-secret",
	}
}

func TestExampleParses(t *testing.T) {
	c, err := Load("example.yaml", env(exampleEnv()))
	if err != nil {
		t.Fatal(err)
	}
	acme := c.Tenants["acme"]
	checks := []struct {
		name      string
		got, want any
	}{
		{name: "nats.url", got: c.NATS.URL, want: "nats://127.0.0.1:4222"},
		{name: "nats.storeDir unused with a url", got: c.NATS.StoreDir, want: ""},
		{name: "nats.streams", got: c.NATS.Streams, want: Default().NATS.Streams},
		{name: "store.dsn", got: c.Store.DSN, want: "postgres://registrar@db/registrar"},
		{name: "dataDir", got: c.DataDir, want: "./registrar-data"},
		{name: "processing", got: c.Processing, want: Default().Processing},
		{name: "resamania.clientId", got: acme.Resamania.ClientID, want: "resa-client-id"},
		{name: "resamania.clientSecret", got: acme.Resamania.ClientSecret.Reveal(), want: "SECRET-resa-client-secret"},
		{name: "marta.apiKey", got: acme.Marta.APIKey.Reveal(), want: "SECRET-marta-api-key"},
		{name: "engage.password", got: acme.Engage.Password.Reveal(), want: "SECRET-engage-password"},
		{name: "cloudsuite.origin", got: acme.CloudSuite.Origin, want: "SOMEORIGIN"},
		{name: "cloudsuite.pollInterval", got: acme.CloudSuite.PollInterval, want: 30 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default does not validate: %v", err)
	}
	if d.NATS.StoreDir != "registrar-data/nats" || d.Store.DSN != "sqlite://registrar-data/registrar.db" ||
		d.Admin.Listen != "127.0.0.1:9090" || d.Processing.InFlight != 256 || d.Log != (Log{Level: "info", Format: "json"}) {
		t.Errorf("Default = %+v", d)
	}
	for _, doc := range []string{"", "{}", "# nothing\n", "nats: ~\nlog:\n"} {
		c, err := Parse([]byte(doc), nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(c, d) {
			t.Errorf("Parse(%q) = %+v, want the defaults", doc, c)
		}
	}
}

const minimalTenant = `
tenants:
  acme:
    marta:
      baseURL: https://martaapidemo.keyx.it
      apiKey: k
`

func TestParseValid(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{name: "derived paths follow dataDir", yaml: "dataDir: /var/lib/registrar\n" + minimalTenant,
			check: func(t *testing.T, c *Config) {
				if c.NATS.StoreDir != "/var/lib/registrar/nats" || c.Store.DSN != "sqlite:///var/lib/registrar/registrar.db" {
					t.Errorf("storeDir %q, dsn %q", c.NATS.StoreDir, c.Store.DSN)
				}
			}},
		{name: "durations and numbers", yaml: "processing:\n  inFlight: 8\n  ackWait: 1m30s\n  retry: {multiplier: 1.5, maxElapsedTime: 1m}\n",
			check: func(t *testing.T, c *Config) {
				p := c.Processing
				if p.InFlight != 8 || p.AckWait != 90*time.Second || p.Retry.Multiplier != 1.5 || p.Retry.MaxElapsedTime != time.Minute ||
					p.Retry.InitialInterval != 200*time.Millisecond {
					t.Errorf("processing = %+v", p)
				}
			}},
		{name: "env expansion inside a value, and the escape", yaml: "admin:\n  listen: ${HOST}:${PORT}\nnats:\n  credentials: /etc/$${NOT_A_VAR}/x\n",
			env: map[string]string{"HOST": "0.0.0.0", "PORT": "9191"},
			check: func(t *testing.T, c *Config) {
				if c.Admin.Listen != "0.0.0.0:9191" || c.NATS.Credentials != "/etc/${NOT_A_VAR}/x" {
					t.Errorf("listen %q, credentials %q", c.Admin.Listen, c.NATS.Credentials)
				}
			}},
		{name: "env expansion in numbers", yaml: "processing:\n  inFlight: ${IN_FLIGHT}\n", env: map[string]string{"IN_FLIGHT": "32"},
			check: func(t *testing.T, c *Config) {
				if c.Processing.InFlight != 32 {
					t.Errorf("inFlight = %d", c.Processing.InFlight)
				}
			}},
		{name: "merge keys inside tenants", yaml: `
tenants:
  acme:
    marta: &marta
      baseURL: https://martaapidemo.keyx.it
      apiKey: shared
  globex:
    marta:
      <<: *marta
      apiKey: own
  initech:
    marta: *marta
`[1:],
			check: func(t *testing.T, c *Config) {
				if got := c.Tenants["globex"].Marta; got.BaseURL != "https://martaapidemo.keyx.it" || got.APIKey.Reveal() != "own" {
					t.Errorf("globex.marta = %+v (%s)", got, got.APIKey.Reveal())
				}
				if got := c.Tenants["initech"].Marta; got.APIKey.Reveal() != "shared" {
					t.Errorf("initech.marta apiKey = %s", got.APIKey.Reveal())
				}
			}},
		{name: "embedded server listening", yaml: "nats:\n  listen: 0.0.0.0:-1\n",
			check: func(t *testing.T, c *Config) {
				if c.NATS.Listen != "0.0.0.0:-1" || c.NATS.StoreDir != "registrar-data/nats" {
					t.Errorf("nats = %+v", c.NATS)
				}
			}},
		{name: "nats cluster and sqlite dsn", yaml: "nats:\n  url: nats://a:4222, nats://b:4222\n  tls: {cert: c.pem, key: k.pem}\nstore:\n  dsn: sqlite:///tmp/x.db\n",
			check: func(t *testing.T, c *Config) {
				if p, ok := c.Store.SQLitePath(); !ok || p != "/tmp/x.db" {
					t.Errorf("SQLitePath = %q, %v", p, ok)
				}
			}},
		{name: "a tenant with only cloudsuite", yaml: `
tenants:
  shop-nl_1:
    cloudsuite:
      baseURL: https://test-api.cloudsuite.io
      tokenURL: https://id.cloudsuite.io/realms/CloudSuite-test/protocol/openid-connect/token
      clientId: id
      clientSecret: s
      origin: SHOP
      pollInterval: 2m
`[1:],
			check: func(t *testing.T, c *Config) {
				if err := c.CheckTenant("shop-nl_1", "cloudsuite"); err != nil || c.Tenants["shop-nl_1"].CloudSuite.PollInterval != 2*time.Minute {
					t.Errorf("CheckTenant: %v, %+v", err, c.Tenants["shop-nl_1"].CloudSuite)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

const goodTenant = `
tenants:
  acme:
    resamania:
      baseURL: https://gateway.prod.gravitee.stadline.tech/resa2-staging
      clientToken: demoapi
      clientId: id
      clientSecret: SECRET-x
      apiKey: SECRET-y
`

func TestParseInvalid(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // keys in error, in order
		msg  string   // a substring of the whole error
	}{
		{name: "unknown top-level key", yaml: "natz:\n  url: x\n", want: []string{"natz"}, msg: "natz: unknown key (known keys: nats, store,"},
		{name: "unknown vendor key", yaml: strings.Replace(goodTenant, "apiKey:", "apiKeys:", 1),
			want: []string{"tenants.acme.resamania.apiKeys"}}, // decoding errors stop before validation
		{name: "key in the wrong case", yaml: strings.Replace(goodTenant, "baseURL:", "baseUrl:", 1),
			want: []string{"tenants.acme.resamania.baseUrl"}, msg: "did you mean baseURL?"},
		{name: "missing environment variable", yaml: strings.Replace(goodTenant, "clientId: id", "clientId: ${RESAMANIA_CLIENT_ID}", 1),
			want: []string{"tenants.acme.resamania.clientId"},
			msg:  "tenants.acme.resamania.clientId: environment variable RESAMANIA_CLIENT_ID is not set"},
		{name: "unterminated ${", yaml: "dataDir: /x/${HOME\n", want: []string{"dataDir"}, msg: "closing }"},
		{name: "bad variable name", yaml: "dataDir: ${1X}\n", want: []string{"dataDir"}, msg: "invalid environment variable name"},
		{name: "YAML syntax", yaml: "nats:\n  url: [\n", want: []string{""}, msg: "invalid YAML"},
		{name: "two documents", yaml: "dataDir: a\n---\ndataDir: b\n", want: []string{""}, msg: "exactly one YAML document"},
		{name: "duration without a unit", yaml: "processing:\n  ackWait: 30\n", want: []string{"processing.ackWait"}, msg: `such as 30s or 1m30s, not "30"`},
		{name: "not an integer", yaml: "processing:\n  inFlight: many\n", want: []string{"processing.inFlight"}, msg: "must be an integer"},
		{name: "zero in flight", yaml: "processing:\n  inFlight: 0\n", want: []string{"processing.inFlight"}},
		{name: "ackWait within the retry budget", yaml: "processing:\n  ackWait: 30s\n", want: []string{"processing.ackWait"}, msg: "longer than processing.retry.maxElapsedTime (30s)"},
		{name: "bad retry", yaml: "processing:\n  retry: {initialInterval: 1s, maxInterval: 500ms, multiplier: 0.5, maxElapsedTime: 0s}\n",
			want: []string{"processing.retry.maxElapsedTime", "processing.retry.maxInterval", "processing.retry.multiplier"}},
		{name: "list for a value", yaml: "log:\n  level: [debug]\n", want: []string{"log.level"}, msg: "must be a single value, not a list"},
		{name: "value for a mapping", yaml: "nats: nats://127.0.0.1:4222\n", want: []string{"nats"}, msg: "must be a mapping"},
		{name: "duplicate key", yaml: "log:\n  level: info\n  level: debug\n", want: []string{"log.level"}, msg: "more than once"},
		{name: "bad log enums", yaml: "log: {level: verbose, format: xml}\n", want: []string{"log.level", "log.format"}},
		{name: "admin listen without a port", yaml: "admin:\n  listen: \"9090\"\n", want: []string{"admin.listen"}},
		{name: "store dsn scheme", yaml: "store:\n  dsn: mysql://u:SECRET-pw@db/x\n", want: []string{"store.dsn"}, msg: "sqlite://, postgres:// or postgresql://"},
		{name: "sqlite dsn without a path", yaml: "store:\n  dsn: sqlite://\n", want: []string{"store.dsn"}},
		{name: "nats listen", yaml: "nats:\n  listen: localhost\n", want: []string{"nats.listen"}},
		{name: "nats url scheme", yaml: "nats:\n  url: http://127.0.0.1:4222\n", want: []string{"nats.url"}},
		{name: "nats url with credentials", yaml: "nats:\n  url: nats://u:SECRET-pw@127.0.0.1:4222\n", want: []string{"nats.url"}, msg: "credentials"},
		{name: "nats auth and tls conflicts", yaml: "nats:\n  credentials: a.creds\n  nkey: b.nk\n  tls: {cert: c.pem}\n",
			want: []string{"nats.nkey", "nats.tls"}},
		{name: "streams", yaml: "nats:\n  streams: {events: REGISTRATION_COMMANDS, steps: a.b, replicas: 7, duplicateWindow: 0s}\n",
			want: []string{"nats.streams.events", "nats.streams.steps", "nats.streams.replicas", "nats.streams.duplicateWindow"}},
		{name: "relative base URL", yaml: strings.Replace(goodTenant, "https://gateway.prod.gravitee.stadline.tech/resa2-staging", "gateway/resa2", 1),
			want: []string{"tenants.acme.resamania.baseURL"}, msg: "tenants.acme.resamania.baseURL: must be an absolute http(s) URL"},
		{name: "base URL scheme and credentials", yaml: `
tenants:
  acme:
    marta: {baseURL: "ftp://martaapidemo.keyx.it", apiKey: k}
    engage: {baseURL: "https://u:SECRET-pw@engage.example.com", username: u, password: p}
`, want: []string{"tenants.acme.marta.baseURL", "tenants.acme.engage.baseURL"}},
		{name: "bad tenant name", yaml: strings.Replace(goodTenant, "acme:", "Acme Corp:", 1), want: []string{"tenants.Acme Corp"}},
		{name: "tenant without vendors", yaml: "tenants:\n  acme: {}\n", want: []string{"tenants.acme"}, msg: "configures no vendor"},
		{name: "missing vendor fields", yaml: "tenants:\n  acme:\n    resamania:\n      baseURL: https://x.example.com\n      clientToken: demo/api\n",
			want: []string{"tenants.acme.resamania.clientToken", "tenants.acme.resamania.clientId", "tenants.acme.resamania.clientSecret", "tenants.acme.resamania.apiKey"}},
		{name: "empty secret from the environment", yaml: strings.Replace(goodTenant, "apiKey: SECRET-y", "apiKey: ${EMPTY}", 1),
			env: map[string]string{"EMPTY": ""}, want: []string{"tenants.acme.resamania.apiKey"}, msg: "is required"},
		{name: "cloudsuite", yaml: `
tenants:
  acme:
    cloudsuite: {baseURL: "https://test-api.cloudsuite.io", tokenURL: "", clientId: id, clientSecret: s, origin: "a/b", pollInterval: 100ms}
`, want: []string{"tenants.acme.cloudsuite.tokenURL", "tenants.acme.cloudsuite.origin", "tenants.acme.cloudsuite.pollInterval"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Error("a config with the error")
			}
			if got := errorKeys(err); !slices.Equal(got, tc.want) {
				t.Errorf("keys %q, want %q\n%v", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error does not contain %q:\n%v", tc.msg, err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a secret:\n%v", err)
			}
		})
	}
}

// errorKeys returns the keys of the KeyErrors joined in err.
func errorKeys(err error) []string {
	var keys []string
	var joined interface{ Unwrap() []error }
	list := []error{err}
	if errors.As(err, &joined) {
		list = joined.Unwrap()
	}
	for _, e := range list {
		var ke *KeyError
		if errors.As(e, &ke) {
			keys = append(keys, ke.Key)
		}
	}
	return keys
}

func TestSecretsNeverShown(t *testing.T) {
	vars := exampleEnv()
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "postgres://registrar@db/registrar", "postgres://registrar:SECRET-db-pw@db/registrar", 1))
	c, err := Parse(data, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	acme := c.Tenants["acme"]
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%+v":               fmt.Sprintf("%+v", c),
		"%v of the value":   fmt.Sprintf("%v", *c),
		"%#v":               fmt.Sprintf("%#v", c),
		"%+v of resamania":  fmt.Sprintf("%+v", *acme.Resamania),
		"%+v of marta":      fmt.Sprintf("%+v", *acme.Marta),
		"%+v of engage":     fmt.Sprintf("%+v", *acme.Engage),
		"%#v of cloudsuite": fmt.Sprintf("%#v", *acme.CloudSuite),
		"json":              string(js),
		"yaml":              string(ym),
		"store redacted":    c.Store.Redacted(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s shows a secret: %s", name, out)
		}
	}
	if got := c.Store.Redacted(); got != "postgres://registrar:xxxxx@db/registrar" {
		t.Errorf("Redacted = %q", got)
	}

	// A secret put where a number or duration belongs is not echoed.
	bad := "processing:\n  ackWait: ${RESAMANIA_CLIENT_SECRET}\n  inFlight: ${MARTA_API_KEY}\n"
	_, err = Parse([]byte(bad), env(vars))
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "the value from the environment") {
		t.Errorf("error = %v", err)
	}
}

func TestCheckTenant(t *testing.T) {
	c, err := Parse([]byte(minimalTenant), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, tenant, vendor, want string
	}{
		{name: "configured vendor", tenant: "acme", vendor: "marta"},
		{name: "any vendor", tenant: "acme", vendor: ""},
		{name: "unknown tenant", tenant: "globex", vendor: "marta", want: `unknown tenant "globex"`},
		{name: "vendor not configured", tenant: "acme", vendor: "engage", want: `tenant "acme" has no engage account`},
		{name: "unknown vendor", tenant: "acme", vendor: "sap", want: `unknown vendor "sap"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckTenant(tc.tenant, tc.vendor)
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Errorf("CheckTenant = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := env(map[string]string{"A": "1", "B_2": "two", "EMPTY": ""})
	cases := []struct {
		name, in, want, err string
	}{
		{name: "no variables", in: "plain $A text", want: "plain $A text"},
		{name: "whole value", in: "${A}", want: "1"},
		{name: "several", in: "x${A}y${B_2}z", want: "x1ytwoz"},
		{name: "empty value", in: "<${EMPTY}>", want: "<>"},
		{name: "escape", in: "$${A} and ${A}", want: "${A} and 1"},
		{name: "unset", in: "${NOPE}", err: "environment variable NOPE is not set"},
		{name: "unterminated", in: "${A", err: "without its closing }"},
		{name: "empty name", in: "${}", err: "invalid environment variable name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := expand(tc.in, vars)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("expand(%q) error = %v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestStoreHelpers(t *testing.T) {
	cases := []struct {
		name, dsn, path, redacted string
		sqlite                    bool
	}{
		{name: "absolute sqlite", dsn: "sqlite:///var/lib/r/state.db", path: "/var/lib/r/state.db", sqlite: true, redacted: "sqlite:///var/lib/r/state.db"},
		{name: "relative sqlite", dsn: "sqlite://data/state.db", path: "data/state.db", sqlite: true, redacted: "sqlite://data/state.db"},
		{name: "postgres", dsn: "postgres://u:pw@db:5432/r?sslmode=disable", redacted: "postgres://u:xxxxx@db:5432/r?sslmode=disable"},
		{name: "postgres password parameter", dsn: "postgres://db/r?password=pw&user=u", redacted: "postgres://db/r?password=xxxxx&user=u"},
		{name: "postgres without password", dsn: "postgresql://registrar@db/registrar", redacted: "postgresql://registrar@db/registrar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{DSN: tc.dsn}
			p, ok := s.SQLitePath()
			if ok != tc.sqlite || (ok && p != tc.path) {
				t.Errorf("SQLitePath = %q, %v", p, ok)
			}
			if got := s.Redacted(); got != tc.redacted {
				t.Errorf("Redacted = %q, want %q", got, tc.redacted)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "log.level" || !strings.Contains(err.Error(), path) {
		t.Errorf("Load error = %v", err)
	}
}

func TestSlogLevel(t *testing.T) {
	for _, lvl := range []string{"debug", "info", "warn", "error"} {
		if got := (Log{Level: lvl}).SlogLevel().String(); !strings.EqualFold(got, lvl) {
			t.Errorf("SlogLevel(%q) = %s", lvl, got)
		}
	}
}

func TestUseDataDirMovesDerivedPaths(t *testing.T) {
	c := Default()
	c.UseDataDir("/tmp/x")
	if c.NATS.StoreDir != "/tmp/x/nats" || c.Store.DSN != "sqlite:///tmp/x/registrar.db" {
		t.Errorf("derived paths not moved: storeDir %q dsn %q", c.NATS.StoreDir, c.Store.Redacted())
	}
	c.Store.DSN = "postgres://db/registrar"
	c.UseDataDir("/tmp/y")
	if c.Store.DSN != "postgres://db/registrar" || c.NATS.StoreDir != "/tmp/y/nats" {
		t.Errorf("explicit DSN changed or store dir kept: %q %q", c.Store.DSN, c.NATS.StoreDir)
	}
}
