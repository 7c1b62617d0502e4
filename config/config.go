// Package config reads registrar's YAML configuration file: how to reach
// NATS and the database, the admin listener, processing limits, logging,
// and the vendor accounts of each tenant.
//
// Parse (and Load) expand ${VAR} from the environment in every scalar value,
// reject unknown keys, fill in defaults and validate; every error names the
// key path, e.g. "tenants.acme.resamania.baseURL: must be an absolute http(s)
// URL". Vendor credentials are secret.String, so the Config can be printed,
// logged or marshalled without showing them; the store's DSN, which may hold
// a password, is a plain string, but Store prints and marshals without the
// password. No error shows a secret either.
//
// A key that is absent takes its default (see Default and the field
// comments); a key that is present is validated as written, so
// `inFlight: 0` is an error, not the default. The exceptions are dataDir,
// nats.storeDir, store.dsn and a CloudSuite pollInterval, where an empty (or
// zero) value means "the default".
package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/secret"
)

// Config is the whole configuration file.
type Config struct {
	NATS  NATS  `yaml:"nats"`
	Store Store `yaml:"store"`
	// DataDir is where embedded state lives (the embedded NATS server's
	// store and the SQLite database). Empty: ./registrar-data.
	DataDir string `yaml:"dataDir"`
	// DataKey (base64, 32 bytes) encrypts the secrets a flow keeps for a
	// while (a MARTA password between the code and the data entry); empty:
	// a key generated once and kept in <dataDir>/data.key.
	DataKey    secret.String `yaml:"dataKey"`
	Admin      Admin         `yaml:"admin"`
	Processing Processing    `yaml:"processing"`
	Log        Log           `yaml:"log"`
	// Tenants maps a tenant name (^[a-z0-9][a-z0-9_-]*$, at most 64
	// characters) to its vendor accounts. Commands name their tenant.
	Tenants map[string]Tenant `yaml:"tenants"`
}

// NATS says how to reach NATS JetStream.
type NATS struct {
	// URL is the server URL (nats://, tls://, ws:// or wss://; several
	// separated by commas). Empty (the default): start an embedded JetStream
	// server. It must not hold credentials: use Credentials or NKey.
	URL string `yaml:"url"`
	// Credentials is the path of a .creds file (optional).
	Credentials string `yaml:"credentials"`
	// NKey is the path of an nkey seed file (optional; not with
	// Credentials).
	NKey string `yaml:"nkey"`
	// TLS holds file paths for TLS to the server (optional).
	TLS TLS `yaml:"tls"`
	// StoreDir is the embedded server's JetStream directory; only used when
	// URL is empty. Empty: DataDir/nats.
	StoreDir string `yaml:"storeDir"`
	// Listen is the embedded server's host:port for client connections;
	// only used when URL is empty. Port -1 picks a free port. Empty:
	// 127.0.0.1 on a free port.
	Listen string `yaml:"listen"`
	// Streams names the streams the service creates when missing.
	Streams Streams `yaml:"streams"`
}

// TLS holds PEM file paths. Cert and Key go together.
type TLS struct {
	CA   string `yaml:"ca"`   // CA bundle to verify the server; empty: the system's roots
	Cert string `yaml:"cert"` // client certificate
	Key  string `yaml:"key"`  // client key
}

// Streams names the JetStream streams and sets their options.
type Streams struct {
	Commands    string `yaml:"commands"`    // subjects registration.cmd.>; default REGISTRATION_COMMANDS
	Events      string `yaml:"events"`      // subjects registration.evt.>; default REGISTRATION_EVENTS
	DeadLetters string `yaml:"deadLetters"` // subjects registration.dlq.>; default REGISTRATION_DLQ
	Steps       string `yaml:"steps"`       // the service's internal step messages; default REGISTRAR_STEPS
	// Replicas is each stream's replica count, 1 to 5 (3 in a production
	// cluster); default 1.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long the server remembers Nats-Msg-Id values
	// to drop re-published messages; default 5m.
	DuplicateWindow time.Duration `yaml:"duplicateWindow"`
}

// Store says where the service keeps its state.
//
// A PostgreSQL DSN may hold a password, so a Store prints (%v, %+v, %#v),
// logs and marshals with Redacted instead of DSN; DSN itself is the plain
// value to open the database with.
type Store struct {
	// DSN is sqlite://PATH (sqlite:///abs/path.db for an absolute path) or
	// postgres://… (postgresql://…). Empty: sqlite://DataDir/registrar.db.
	DSN string `yaml:"dsn"`
}

// SQLitePath returns the file path of a sqlite:// DSN (everything after the
// scheme), and false for any other DSN.
func (s Store) SQLitePath() (string, bool) {
	return strings.CutPrefix(s.DSN, "sqlite://")
}

// Redacted returns the DSN with its password (in the user info or a
// password query parameter) replaced by "xxxxx", for logs.
func (s Store) Redacted() string {
	if _, ok := s.SQLitePath(); ok || s.DSN == "" {
		return s.DSN
	}
	u, err := url.Parse(s.DSN)
	if err != nil {
		return secret.Marker
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// String implements fmt.Stringer without the password.
func (s Store) String() string { return "{DSN:" + s.Redacted() + "}" }

// GoString hides the password from %#v.
func (s Store) GoString() string { return "config.Store{DSN:" + strconv.Quote(s.Redacted()) + "}" }

// LogValue implements slog.LogValuer without the password.
func (s Store) LogValue() slog.Value { return slog.GroupValue(slog.String("dsn", s.Redacted())) }

// MarshalJSON writes the DSN without its password.
func (s Store) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"dsn": s.Redacted()})
}

// MarshalYAML writes the DSN without its password.
func (s Store) MarshalYAML() (any, error) { return map[string]string{"dsn": s.Redacted()}, nil }

// Admin configures the admin HTTP listener (/metrics, /healthz, /readyz,
// /v1/registrations/{id}).
type Admin struct {
	// Listen is host:port; default 127.0.0.1:9090.
	Listen string `yaml:"listen"`
}

// Processing bounds how messages are handled.
type Processing struct {
	// InFlight is how many messages each step handler processes at once
	// (at least 1); default 256.
	InFlight int `yaml:"inFlight"`
	// AckWait is the server's AckWait: a message not acknowledged in that
	// time is redelivered. It must exceed Retry.MaxElapsedTime (better: by
	// VendorTimeout and more, since the last attempt starts before the
	// budget ends); default 2m.
	AckWait time.Duration `yaml:"ackWait"`
	// Retry is the backoff of a failing step inside one delivery.
	Retry Retry `yaml:"retry"`
	// VendorTimeout bounds each HTTP request to a vendor; default 10s.
	VendorTimeout time.Duration `yaml:"vendorTimeout"`
	// OTP bounds the one-time codes flows wait for.
	OTP OTP `yaml:"otp"`
	// Breaker is the circuit breaker of every (tenant, vendor).
	Breaker Breaker `yaml:"breaker"`
}

// Breaker configures the circuit breakers: after Threshold consecutive
// transient failures of a vendor for a tenant, calls to it stop for
// OpenFor (doubling after each failed probe, up to MaxOpenFor) and the
// messages that need it are parked — redelivered later — for up to MaxPark
// from their publication before they become dead letters.
type Breaker struct {
	Threshold  int           `yaml:"threshold"`  // default 5; negative: no breaker
	OpenFor    time.Duration `yaml:"openFor"`    // default 2s
	MaxOpenFor time.Duration `yaml:"maxOpenFor"` // default 30s
	MaxPark    time.Duration `yaml:"maxPark"`    // default 15m
}

// OTP bounds the one-time codes flows wait for.
type OTP struct {
	TTL            time.Duration `yaml:"ttl"`            // how long a code is waited for; default 10m
	Attempts       int           `yaml:"attempts"`       // wrong codes allowed per code sent; default 3
	MaxResends     int           `yaml:"maxResends"`     // new codes per flow; default 3
	ResendInterval time.Duration `yaml:"resendInterval"` // between two codes; default 30s
}

// Retry is an exponential backoff.
type Retry struct {
	InitialInterval time.Duration `yaml:"initialInterval"` // default 200ms
	MaxInterval     time.Duration `yaml:"maxInterval"`     // at least InitialInterval; default 5s
	Multiplier      float64       `yaml:"multiplier"`      // at least 1; default 2
	// MaxElapsedTime is the budget per step before the message becomes a
	// dead letter; default 30s.
	MaxElapsedTime time.Duration `yaml:"maxElapsedTime"`
}

// Log configures the service's logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error; default info
	Format string `yaml:"format"` // json or text; default json
}

// SlogLevel returns Level as a slog.Level (info for an invalid level).
func (l Log) SlogLevel() slog.Level {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lvl
}

// Tenant holds one tenant's vendor accounts; each is optional (nil when not
// configured), but a tenant configures at least one.
type Tenant struct {
	Resamania  *Resamania  `yaml:"resamania"`
	Marta      *Marta      `yaml:"marta"`
	Engage     *Engage     `yaml:"engage"`
	CloudSuite *CloudSuite `yaml:"cloudsuite"`
}

// Resamania is a Resamania (Stadline) API account. Every field is required.
type Resamania struct {
	// BaseURL is the gateway with its environment, e.g.
	// https://gateway.prod.gravitee.stadline.tech/resa2-staging; the
	// clientToken is appended to it.
	BaseURL      string        `yaml:"baseURL"`
	ClientToken  string        `yaml:"clientToken"` // e.g. demoapi: A-Z a-z 0-9 . _ ~ -
	ClientID     string        `yaml:"clientId"`
	ClientSecret secret.String `yaml:"clientSecret"`
	APIKey       secret.String `yaml:"apiKey"` // the X-Gravitee-Api-Key header
	// RateLimit is the client-side limit per API key, so the service never
	// provokes the gateway's 429s itself.
	RateLimit RateLimit `yaml:"rateLimit"`
}

// RateLimit is a client-side request budget. Zero values take the
// vendor's documented guideline; a negative value turns that limit off.
type RateLimit struct {
	PerMinute   int `yaml:"perMinute"`   // requests per minute; Resamania's guideline: 1000
	SpikeArrest int `yaml:"spikeArrest"` // requests per 100 ms; Resamania's example: 30
}

// Marta is a MARTA (KeyX) Customer API account. Every field is required.
type Marta struct {
	BaseURL string        `yaml:"baseURL"` // e.g. https://martaapidemo.keyx.it
	APIKey  secret.String `yaml:"apiKey"`  // the x-api-key header
	// RateLimit throttles the calls of this tenant (no documented quota:
	// off unless set).
	RateLimit RateLimit `yaml:"rateLimit"`
}

// Engage is a Mapp Engage API system user. Every field is required.
type Engage struct {
	BaseURL  string        `yaml:"baseURL"` // e.g. https://engage.example.com/api/rest/v19
	Username string        `yaml:"username"`
	Password secret.String `yaml:"password"`
	// RateLimit throttles the calls of this tenant (off unless set).
	RateLimit RateLimit `yaml:"rateLimit"`
}

// CloudSuite is a CloudSuite API client for one origin.
type CloudSuite struct {
	BaseURL      string        `yaml:"baseURL"`  // e.g. https://test-api.cloudsuite.io
	TokenURL     string        `yaml:"tokenURL"` // the OpenID Connect token endpoint
	ClientID     string        `yaml:"clientId"`
	ClientSecret secret.String `yaml:"clientSecret"`
	Origin       string        `yaml:"origin"` // the origin code in /api/origin/{origin}/…
	// PollInterval is how often the origin is polled for new inactive
	// users, at least 1s; zero or absent: 30s.
	PollInterval time.Duration `yaml:"pollInterval"`
	// RateLimit throttles the calls of this tenant (off unless set).
	RateLimit RateLimit `yaml:"rateLimit"`
}

// Defaults that other values derive from.
const (
	defaultDataDir      = "./registrar-data"
	defaultPollInterval = 30 * time.Second
)

// defaults returns the defaults of every key, without the values derived
// from others (see derive).
func defaults() *Config {
	return &Config{
		NATS: NATS{Streams: Streams{
			Commands:        "REGISTRATION_COMMANDS",
			Events:          "REGISTRATION_EVENTS",
			DeadLetters:     "REGISTRATION_DLQ",
			Steps:           "REGISTRAR_STEPS",
			Replicas:        1,
			DuplicateWindow: 5 * time.Minute,
		}},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		Processing: Processing{
			InFlight: 256,
			AckWait:  2 * time.Minute,
			Retry: Retry{
				InitialInterval: 200 * time.Millisecond,
				MaxInterval:     5 * time.Second,
				Multiplier:      2,
				MaxElapsedTime:  30 * time.Second,
			},
			VendorTimeout: 10 * time.Second,
			OTP:           OTP{TTL: 10 * time.Minute, Attempts: 3, MaxResends: 3, ResendInterval: 30 * time.Second},
			Breaker:       Breaker{Threshold: 5, OpenFor: 2 * time.Second, MaxOpenFor: 30 * time.Second, MaxPark: 15 * time.Minute},
		},
		Log: Log{Level: "info", Format: "json"},
	}
}

// derive fills in the values whose default depends on other values.
func (c *Config) derive() {
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if c.NATS.URL == "" && c.NATS.StoreDir == "" {
		c.NATS.StoreDir = filepath.Join(c.DataDir, "nats")
	}
	if c.Store.DSN == "" {
		c.Store.DSN = "sqlite://" + filepath.ToSlash(filepath.Join(c.DataDir, "registrar.db"))
	}
	for _, t := range c.Tenants {
		if t.CloudSuite != nil && t.CloudSuite.PollInterval == 0 {
			t.CloudSuite.PollInterval = defaultPollInterval
		}
	}
}

// Default returns a configuration with every default and no tenants: an
// embedded NATS server and SQLite database under ./registrar-data.
func Default() *Config {
	c := defaults()
	c.derive()
	return c
}

// Parse reads a configuration file's content. lookupEnv (os.LookupEnv, or
// nil for an empty environment) expands ${VAR} in every scalar value; write
// $${ for a literal ${. Unknown keys are errors. Defaults are applied, then
// the result is validated; the error lists every problem found, one per
// line, each naming its key.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := defaults()
	if err := decode(data, c, lookupEnv); err != nil {
		return nil, err
	}
	c.derive()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads and parses the configuration file at path (see Parse).
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return c, nil
}

// UseDataDir moves the embedded state — the embedded NATS server's store
// directory and the SQLite database — under dir, unless they were set to
// other places explicitly. Tests, the demo and the benchmarks use it on a
// Default() configuration.
func (c *Config) UseDataDir(dir string) {
	if c.NATS.StoreDir == filepath.Join(c.DataDir, "nats") {
		c.NATS.StoreDir = ""
	}
	if c.Store.DSN == "sqlite://"+filepath.ToSlash(filepath.Join(c.DataDir, "registrar.db")) {
		c.Store.DSN = ""
	}
	c.DataDir = dir
	c.derive()
}
