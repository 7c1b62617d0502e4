package resamania

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/secret"
	"github.com/registrar-dev/registrar/vendors"
)

func TestConfigValidate(t *testing.T) {
	ok := demoConfig("https://gateway.example.com/resa2-staging")
	tests := []struct {
		name string
		edit func(*Config)
		key  string // in the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "baseURL"},
		{"relative base URL", func(c *Config) { c.BaseURL = "/resa2-staging" }, "baseURL"},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://x/y?z=1" }, "baseURL"},
		{"no client token", func(c *Config) { c.ClientToken = "" }, "clientToken"},
		{"client token with slash", func(c *Config) { c.ClientToken = "a/b" }, "clientToken"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "clientId"},
		{"no client secret", func(c *Config) { c.ClientSecret = secret.String{} }, "clientSecret"},
		{"no API key", func(c *Config) { c.APIKey = secret.String{} }, "apiKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := NewClient(cfg)
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err = %v, want one naming %s", err, tt.key)
			}
		})
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg := Config{BaseURL: "https://x", ClientToken: "demoapi", ClientID: "id", ClientSecret: secret.New("s3cret"), APIKey: secret.New("k3y")}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "s3cret") || strings.Contains(s, "k3y") {
			t.Fatalf("config shows a secret: %s", s)
		}
	}
	if s := fmt.Sprintf("%v", ContactCredentials("jane@example.com")); strings.Contains(s, "jane") {
		t.Fatalf("a grant shows its subject: %s", s)
	}
}

func TestClientSendsHeaders(t *testing.T) {
	var got http.Header
	var path, query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth/v2/token") {
			_ = r.ParseForm()
			if r.PostForm.Get("client_secret") != "demo-secret" || r.Header.Get("X-Gravitee-Api-Key") != "demo-api-key" {
				w.WriteHeader(401)
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"tok","expires_in":"3600","token_type":"bearer"}`))
			return
		}
		got, path, query = r.Header.Clone(), r.URL.Path, r.URL.RawQuery
		_, _ = w.Write([]byte(`{"hydra:member":[],"hydra:totalItems":0}`))
	}))
	defer srv.Close()
	c, err := NewClient(demoConfig(srv.URL+"/env/"), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindContactsByEmail(t.Context(), Scope{ClubID: "/demoapi/clubs/1"}, "a+b@c.d"); err != nil {
		t.Fatal(err)
	}
	if path != "/env/demoapi/contacts" || query != "email=a%2Bb%40c.d" {
		t.Fatalf("path %s query %s", path, query)
	}
	want := map[string]string{"Authorization": "Bearer tok", "X-Gravitee-Api-Key": "demo-api-key",
		"X-User-Club-Id": "/demoapi/clubs/1", "X-User-Network-Node-Id": ""}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if !strings.Contains(got.Get("Accept"), "application/ld+json") {
		t.Errorf("Accept = %q", got.Get("Accept"))
	}
}

func TestClientInvalidAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", "<html>proxy</html>"},
		{"created without id", `{"number":"C1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/token") {
					_, _ = w.Write([]byte(`{"access_token":"tok","expires_in":3600}`))
					return
				}
				w.WriteHeader(201)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := NewClient(demoConfig(srv.URL), WithHTTPClient(srv.Client()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CreateContact(t.Context(), paris, newPerson)
			if ve := vendorError(t, err, vendors.Transient, 201); ve.Code != CodeInvalidAnswer {
				t.Fatalf("error = %+v", ve)
			}
		})
	}
}

func TestClientRefusesEmptyEmail(t *testing.T) {
	c, err := NewClient(demoConfig("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindContactsByEmail(t.Context(), paris, "")
	if !vendors.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := NewClient(demoConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindContactsByEmail(t.Context(), paris, "a@b.c")
	if ve := vendorError(t, err, vendors.Transient, 0); ve.Op != OpToken || ve.Err == nil {
		t.Fatalf("error = %+v", ve)
	}
}

// Token cache, without HTTP.

func TestTokenCacheOneFetchPerKey(t *testing.T) {
	var fetches atomic.Int64
	release := make(chan struct{})
	c := newTokenCache(time.Now, func(ctx context.Context, g Grant) (secret.String, time.Duration, error) {
		fetches.Add(1)
		<-release
		return secret.New("tok-" + g.Type()), time.Hour, nil
	})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if tok, err := c.get(t.Context(), ClientCredentials()); err != nil || tok.Reveal() != "tok-client_credentials" {
				t.Errorf("get = %v, %v", tok.Reveal(), err)
			}
		})
	}
	wg.Go(func() { _, _ = c.get(t.Context(), ClubCredentials("/x/clubs/1")) }) // another key, its own fetch
	for fetches.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want one per key", n)
	}
}

func TestTokenCacheAbandonedFetchIsCancelled(t *testing.T) {
	cancelled := make(chan struct{})
	c := newTokenCache(time.Now, func(ctx context.Context, _ Grant) (secret.String, time.Duration, error) {
		<-ctx.Done()
		close(cancelled)
		return secret.String{}, 0, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.get(ctx, ClientCredentials()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the token request goes on with no one waiting")
	}
}

func TestTokenCacheErrorsAreShared(t *testing.T) {
	var fetches atomic.Int64
	boom := &vendors.Error{Vendor: Vendor, Kind: vendors.Transient}
	c := newTokenCache(time.Now, func(context.Context, Grant) (secret.String, time.Duration, error) {
		fetches.Add(1)
		return secret.String{}, 0, boom
	})
	for range 2 {
		if _, err := c.get(t.Context(), ClientCredentials()); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if fetches.Load() != 2 {
		t.Fatal("a failed fetch must not be cached")
	}
}

func TestTokenCacheInvalidate(t *testing.T) {
	n := 0
	c := newTokenCache(time.Now, func(context.Context, Grant) (secret.String, time.Duration, error) {
		n++
		return secret.New(fmt.Sprint("tok", n)), time.Hour, nil
	})
	g := ClientCredentials()
	t1, _ := c.get(t.Context(), g)
	c.invalidate(g, secret.New("some older token")) // refreshed meanwhile by another caller: kept
	if t2, _ := c.get(t.Context(), g); t2 != t1 {
		t.Fatal("invalidating an older token dropped the current one")
	}
	c.invalidate(g, t1)
	if t3, _ := c.get(t.Context(), g); t3 == t1 {
		t.Fatal("the refused token is still served")
	}
}

// BenchmarkClientAgainstSimulator pushes calls through the client and the
// simulator with 50 ms of latency, rate limits off.
func BenchmarkClientAgainstSimulator(b *testing.B) {
	cfg := DefaultSimConfig()
	cfg.RateLimit = RateLimit{PerMinute: -1, SpikeArrest: -1}
	cfg.Faults.Latency = 50 * time.Millisecond
	cfg.MaxRequestLog = -1
	srv := httptest.NewServer(NewSimulator(cfg))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 1000}
	defer tr.CloseIdleConnections()
	c, err := NewClient(demoConfig(srv.URL+env), WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}), WithoutRateLimit())
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(200)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.FindContactsByEmail(context.Background(), paris, johnPlus); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
