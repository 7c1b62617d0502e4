package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/registrar-dev/registrar/secret"
)

// Validate checks the configuration. The error joins one *KeyError per
// problem (errors.Join), each naming its key, e.g.
// "tenants.acme.resamania.baseURL: must be an absolute http(s) URL". No
// message shows a value of a secret.
func (c *Config) Validate() error {
	v := &validator{}
	c.validateNATS(v)

	dsn := c.Store.DSN
	switch {
	case dsn == "":
		v.fail("store.dsn", "is required")
	case strings.HasPrefix(dsn, "sqlite://"):
		if p, _ := c.Store.SQLitePath(); p == "" || p == "/" {
			v.fail("store.dsn", "must name a file after sqlite://, such as sqlite:///var/lib/registrar/state.db")
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			v.fail("store.dsn", "must be a valid postgres:// URL") // err would quote the DSN
		}
	default:
		v.fail("store.dsn", "must start with sqlite://, postgres:// or postgresql://")
	}
	v.required("dataDir", c.DataDir)

	if host, port, err := net.SplitHostPort(c.Admin.Listen); err != nil || !validPort(port) || strings.ContainsAny(host, " /") {
		v.fail("admin.listen", "must be host:port, such as 127.0.0.1:9090 or :9090")
	}

	if !c.DataKey.IsZero() {
		if _, err := secret.DecodeKey(c.DataKey); err != nil {
			v.fail("dataKey", "%s", err.Error())
		}
	}

	p := c.Processing
	if p.InFlight < 1 {
		v.fail("processing.inFlight", "must be at least 1")
	}
	v.positive("processing.ackWait", p.AckWait)
	v.positive("processing.retry.initialInterval", p.Retry.InitialInterval)
	v.positive("processing.retry.maxElapsedTime", p.Retry.MaxElapsedTime)
	v.positive("processing.vendorTimeout", p.VendorTimeout)
	v.positive("processing.breaker.openFor", p.Breaker.OpenFor)
	v.positive("processing.breaker.maxPark", p.Breaker.MaxPark)
	if p.Breaker.MaxOpenFor < p.Breaker.OpenFor {
		v.fail("processing.breaker.maxOpenFor", "must be at least processing.breaker.openFor (%s)", p.Breaker.OpenFor)
	}
	v.positive("processing.otp.ttl", p.OTP.TTL)
	v.positive("processing.otp.resendInterval", p.OTP.ResendInterval)
	if p.OTP.Attempts < 1 {
		v.fail("processing.otp.attempts", "must be at least 1")
	}
	if p.OTP.MaxResends < 1 {
		v.fail("processing.otp.maxResends", "must be at least 1")
	}
	if p.Retry.MaxInterval < p.Retry.InitialInterval {
		v.fail("processing.retry.maxInterval", "must be at least processing.retry.initialInterval (%s)", p.Retry.InitialInterval)
	}
	if p.Retry.Multiplier < 1 {
		v.fail("processing.retry.multiplier", "must be at least 1")
	}
	if p.AckWait > 0 && p.AckWait <= p.Retry.MaxElapsedTime {
		v.fail("processing.ackWait", "must be longer than processing.retry.maxElapsedTime (%s), or a message is redelivered while it is still being retried",
			p.Retry.MaxElapsedTime)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log.level", "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		v.fail("log.format", "must be json or text")
	}

	names := make([]string, 0, len(c.Tenants))
	for name := range c.Tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c.Tenants[name].validate(v, "tenants."+name, name)
	}
	return errors.Join(v.errs...)
}

func (c *Config) validateNATS(v *validator) {
	n := c.NATS
	if n.Listen != "" {
		host, port, err := net.SplitHostPort(n.Listen)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < -1 || p > 65535 || strings.ContainsAny(host, " /") {
			v.fail("nats.listen", "must be host:port, such as 127.0.0.1:4222 (port -1 picks a free one)")
		}
	}
	if n.URL == "" {
		v.required("nats.storeDir", n.StoreDir)
	} else {
		for _, s := range strings.Split(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || u.Host == "" || !oneOf(u.Scheme, "nats", "tls", "ws", "wss") {
				v.fail("nats.url", "must be a nats://, tls://, ws:// or wss:// URL with a host (several separated by commas), or empty for an embedded server")
				break
			}
			if u.User != nil {
				v.fail("nats.url", "must not hold credentials: use nats.credentials or nats.nkey")
				break
			}
		}
	}
	if n.Credentials != "" && n.NKey != "" {
		v.fail("nats.nkey", "cannot be combined with nats.credentials")
	}
	if (n.TLS.Cert == "") != (n.TLS.Key == "") {
		v.fail("nats.tls", "cert and key go together: give both or neither")
	}
	s := n.Streams
	streams := []struct{ key, name string }{
		{"nats.streams.commands", s.Commands},
		{"nats.streams.events", s.Events},
		{"nats.streams.deadLetters", s.DeadLetters},
		{"nats.streams.steps", s.Steps},
	}
	seen := map[string]string{}
	for _, st := range streams {
		switch {
		case st.name == "":
			v.fail(st.key, "is required")
		case strings.ContainsAny(st.name, " \t\r\n.*>/\\") || len(st.name) > 255:
			v.fail(st.key, "must be a stream name: no white space, '.', '*', '>', '/' or '\\'")
		case seen[st.name] != "":
			v.fail(st.key, "must differ from %s", seen[st.name])
		default:
			seen[st.name] = st.key
		}
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		v.fail("nats.streams.replicas", "must be 1 to 5")
	}
	v.positive("nats.streams.duplicateWindow", s.DuplicateWindow)
}

func (t Tenant) validate(v *validator, key, name string) {
	if !validTenantName(name) {
		v.fail(key, "tenant names must be 1 to 64 characters of a-z 0-9 _ -, starting with a letter or digit")
	}
	if t.Resamania == nil && t.Marta == nil && t.Engage == nil && t.CloudSuite == nil {
		v.fail(key, "configures no vendor: give resamania, marta, engage or cloudsuite")
	}
	if r := t.Resamania; r != nil {
		k := key + ".resamania"
		v.httpURL(k+".baseURL", r.BaseURL)
		if v.required(k+".clientToken", r.ClientToken) && !validToken(r.ClientToken) {
			v.fail(k+".clientToken", "must hold only A-Z a-z 0-9 . _ ~ -")
		}
		v.required(k+".clientId", r.ClientID)
		v.secret(k+".clientSecret", r.ClientSecret)
		v.secret(k+".apiKey", r.APIKey)
	}
	if m := t.Marta; m != nil {
		k := key + ".marta"
		v.httpURL(k+".baseURL", m.BaseURL)
		v.secret(k+".apiKey", m.APIKey)
	}
	if e := t.Engage; e != nil {
		k := key + ".engage"
		v.httpURL(k+".baseURL", e.BaseURL)
		v.required(k+".username", e.Username)
		v.secret(k+".password", e.Password)
	}
	if cs := t.CloudSuite; cs != nil {
		k := key + ".cloudsuite"
		v.httpURL(k+".baseURL", cs.BaseURL)
		v.httpURL(k+".tokenURL", cs.TokenURL)
		v.required(k+".clientId", cs.ClientID)
		v.secret(k+".clientSecret", cs.ClientSecret)
		if v.required(k+".origin", cs.Origin) && !validOrigin(cs.Origin) {
			v.fail(k+".origin", "must be 1 to 64 of A-Z a-z 0-9 . _ - (it names the origin's users in registrationIds cloudsuite:<origin>:<userKey>)")
		}
		if cs.PollInterval < time.Second {
			v.fail(k+".pollInterval", "must be at least 1s")
		}
	}
}

// CheckTenant tells whether tenant exists and, unless vendor is "",
// whether it configures that vendor ("resamania", "marta", "engage",
// "cloudsuite"). It implements events.TenantChecker; its messages are shown
// to upstream in rejected events.
func (c *Config) CheckTenant(tenant, vendor string) error {
	t, ok := c.Tenants[tenant]
	if !ok {
		return fmt.Errorf("unknown tenant %q", tenant)
	}
	var has bool
	switch vendor {
	case "":
		return nil
	case "resamania":
		has = t.Resamania != nil
	case "marta":
		has = t.Marta != nil
	case "engage":
		has = t.Engage != nil
	case "cloudsuite":
		has = t.CloudSuite != nil
	default:
		return fmt.Errorf("unknown vendor %q", vendor)
	}
	if !has {
		return fmt.Errorf("tenant %q has no %s account", tenant, vendor)
	}
	return nil
}

type validator struct{ errs []error }

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &KeyError{Key: key, Message: fmt.Sprintf(format, args...)})
}

// required reports whether s is set, and fails key if not.
func (v *validator) required(key, s string) bool {
	if strings.TrimSpace(s) == "" {
		v.fail(key, "is required")
		return false
	}
	return true
}

func (v *validator) secret(key string, s secret.String) {
	if strings.TrimSpace(s.Reveal()) == "" {
		v.fail(key, "is required")
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.fail(key, "must be a positive duration such as 30s")
	}
}

func (v *validator) httpURL(key, s string) {
	if !v.required(key, s) {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || !oneOf(u.Scheme, "http", "https"):
		v.fail(key, "must be an absolute http(s) URL")
	case u.User != nil:
		v.fail(key, "must be an absolute http(s) URL without credentials")
	case u.RawQuery != "" || u.Fragment != "":
		v.fail(key, "must be an absolute http(s) URL without a query or fragment")
	}
}

func oneOf(s string, values ...string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

func validTenantName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

func validToken(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._~-", c) >= 0) {
			return false
		}
	}
	return true
}

// validOrigin reports whether a CloudSuite origin code can go in a URL path
// and in a registrationId (cloudsuite:<origin>:<userKey>).
func validOrigin(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
