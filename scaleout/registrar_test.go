package scaleout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/vendors/resamania"
)

// registrar is one `registrar serve` process, kept running as a process
// supervisor (systemd, Kubernetes) would: an instance that exits without
// the test having killed it is started again, and its exit is recorded —
// as a start failure when it exited before it was ever ready, as a crash
// otherwise.
type registrar struct {
	adminPort int
	*proc

	smu           sync.Mutex
	down          bool // killed by the test: not restarted by the supervisor
	readyIn       int  // the incarnation that last answered /readyz 200
	startFailures []string
	crashes       []string
}

func (r *registrar) readyURL() string { return fmt.Sprintf("http://127.0.0.1:%d/readyz", r.adminPort) }

// waitReady waits until the supervisor has seen the current incarnation
// answer /readyz with 200 (starting the instance again if it failed to
// start).
func (r *registrar) waitReady(ctx context.Context, timeout time.Duration) error {
	return waitUntil(ctx, timeout, 200*time.Millisecond, func() error {
		if !r.ready() {
			return fmt.Errorf("%s (incarnation %d) not ready; last log line: %s", r.name, r.current(), r.lastLine())
		}
		return nil
	})
}

// ready says whether the current incarnation has been seen ready.
func (r *registrar) ready() bool {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.readyIn == r.current() && r.running()
}

// killByTest kills the current incarnation; the supervisor leaves it down
// until restartByTest.
func (r *registrar) killByTest() {
	r.smu.Lock()
	r.down = true
	r.smu.Unlock()
	r.kill()
}

func (r *registrar) restartByTest() {
	r.t.Helper()
	r.smu.Lock()
	defer r.smu.Unlock()
	r.down = false
	r.start()
}

// supervise watches the registrars every 250 ms until the returned stop is
// called: it notes when an incarnation becomes ready and restarts one that
// exited on its own (after 1 s, as a supervisor's back-off would).
func supervise(t *testing.T, regs []*registrar) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range regs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(250 * time.Millisecond):
				}
				r.smu.Lock()
				if r.down {
					r.smu.Unlock()
					continue
				}
				inc := r.current()
				if done, err := r.exited(); done {
					what := fmt.Sprintf("incarnation %d exited (%v): %s", inc, err, r.lastLine())
					if r.readyIn == inc {
						r.crashes = append(r.crashes, what)
					} else {
						r.startFailures = append(r.startFailures, what)
					}
					r.smu.Unlock()
					t.Logf("supervisor: %s %s; starting it again in 1s", r.name, what)
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Second):
					}
					r.smu.Lock()
					if !r.down {
						if err := r.startErr(); err != nil {
							t.Errorf("supervisor: %v", err)
						}
					}
					r.smu.Unlock()
					continue
				}
				if r.readyIn != inc {
					if code, _, err := httpGet(ctx, r.readyURL()); err == nil && code == 200 {
						r.readyIn = inc
					}
				}
				r.smu.Unlock()
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// exits returns the start failures and crashes recorded.
func (r *registrar) exits() (startFailures, crashes []string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	return append([]string(nil), r.startFailures...), append([]string(nil), r.crashes...)
}

// registrarConfig is the YAML configuration of one registrar; the secrets
// come from the environment.
func registrarConfig(natsURLs, dsn, dataDir string, adminPort int, resamaniaURL string, acct resamania.SimAccount) string {
	return fmt.Sprintf(`nats:
  url: %q
  streams:
    replicas: 3
store:
  dsn: %q
dataDir: %q
dataKey: ${SCALEOUT_DATA_KEY}
admin:
  listen: 127.0.0.1:%d
processing:
  ackWait: %s
  retry:
    maxElapsedTime: %s
log:
  level: info
  format: json
tenants:
  acme:
    resamania:
      baseURL: %q
      clientToken: %q
      clientId: %q
      clientSecret: ${SCALEOUT_RESAMANIA_SECRET}
      apiKey: ${SCALEOUT_RESAMANIA_API_KEY}
      rateLimit:
        perMinute: -1
        spikeArrest: -1
`, natsURLs, dsn, dataDir, adminPort, ackWait, maxElapsedTime, resamaniaURL, acct.ClientToken, acct.ClientID)
}

// metricSum sums the samples of a Prometheus metric in the current
// incarnation's /metrics whose labels contain every one of labels
// (`result="duplicate"`); -1 when /metrics does not answer.
func (r *registrar) metricSum(ctx context.Context, name string, labels ...string) float64 {
	code, body, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", r.adminPort))
	if err != nil || code != 200 {
		return -1
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(lbls, l) {
				ok = false
			}
		}
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}
