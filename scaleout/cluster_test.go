package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// systemNATSServer is the nats-server the brief of this test names.
const systemNATSServer = "/usr/sbin/nats-server"

// natsServerEnv names a nats-server binary to use instead.
const natsServerEnv = "REGISTRAR_SCALEOUT_NATS_SERVER"

// natsServerBinary returns the nats-server binary the cluster runs and why
// that one:
//
//   - $REGISTRAR_SCALEOUT_NATS_SERVER when set;
//   - /usr/sbin/nats-server when it is 2.10 or newer;
//   - otherwise the nats-server of go.mod's github.com/nats-io/nats-server/v2
//     (the server registrar embeds), built into dir. registrar needs 2.10:
//     its "otp" consumer has several filter subjects, which a 2.9 server
//     ignores (nats.go: "multiple consumer filter subjects not supported
//     by nats-server") — registrar serve cannot start on it.
func natsServerBinary(t *testing.T, root, dir string) (string, string) {
	t.Helper()
	if p := os.Getenv(natsServerEnv); p != "" {
		v, err := natsServerVersion(p)
		if err != nil {
			t.Fatalf("%s=%s: %v", natsServerEnv, p, err)
		}
		return p, fmt.Sprintf("%s (v%s, from %s)", p, v, natsServerEnv)
	}
	why := systemNATSServer + " is missing"
	if _, err := os.Stat(systemNATSServer); err == nil {
		v, err := natsServerVersion(systemNATSServer)
		switch {
		case err != nil:
			why = fmt.Sprintf("%s: %v", systemNATSServer, err)
		case versionAtLeast(v, 2, 10):
			return systemNATSServer, fmt.Sprintf("%s (v%s)", systemNATSServer, v)
		default:
			why = fmt.Sprintf("%s is v%s; registrar needs 2.10 (consumers with several filter subjects)", systemNATSServer, v)
		}
	}
	out := filepath.Join(dir, "nats-server")
	goBuild(t, root, out, "github.com/nats-io/nats-server/v2")
	v, err := natsServerVersion(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, fmt.Sprintf("nats-server v%s built from go.mod (%s)", v, why)
}

var versionRE = regexp.MustCompile(`v?(\d+)\.(\d+)\.(\d+)`)

func natsServerVersion(path string) (string, error) {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v: %s", path, err, out)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("%s --version: no version in %q", path, out)
	}
	return m[1] + "." + m[2] + "." + m[3], nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || ma == major && mi >= minor
}

// natsNode is one nats-server of the cluster.
type natsNode struct {
	name                           string
	clientPort, routePort, monPort int
	storeDir                       string
	*proc
}

func (n *natsNode) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort) }
func (n *natsNode) monitorURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.monPort, path)
}

// natsCluster is three nats-server processes with JetStream, routed to
// each other on loopback.
type natsCluster struct {
	nodes []*natsNode
}

// startCluster starts three nodes and waits until JetStream has a meta
// leader that every node knows, with three peers.
func startCluster(t *testing.T, ps *procs, bin, dir string) *natsCluster {
	t.Helper()
	ports := freePorts(t, 9)
	c := &natsCluster{}
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{
			name:       fmt.Sprintf("n%d", i+1),
			clientPort: ports[3*i], routePort: ports[3*i+1], monPort: ports[3*i+2],
			storeDir: filepath.Join(dir, fmt.Sprintf("n%d-js", i+1)),
		})
	}
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.routePort))
			}
		}
		args := []string{
			"-a", "127.0.0.1", "-p", strconv.Itoa(n.clientPort), "-m", strconv.Itoa(n.monPort),
			"-js", "-sd", n.storeDir,
			"--server_name", n.name, "--cluster_name", "registrar-scaleout",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", n.routePort),
			"--routes", strings.Join(routes, ","),
		}
		n.proc = ps.add("nats-"+n.name, bin, args, nil)
		n.start()
	}
	if err := c.waitHealthy(t.Context(), 60*time.Second); err != nil {
		t.Fatalf("NATS cluster: %v", err)
	}
	return c
}

// urls is every node's client URL, comma-separated.
func (c *natsCluster) urls() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, n.clientURL())
	}
	return strings.Join(us, ",")
}

func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// jsz is the part of a node's /jsz answer this test reads.
type jsz struct {
	Meta *struct {
		Leader      string `json:"leader"`
		ClusterSize int    `json:"cluster_size"`
		Replicas    []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// waitHealthy waits until every running node answers /healthz with 200
// and agrees on a meta leader of a three-node JetStream cluster.
func (c *natsCluster) waitHealthy(ctx context.Context, timeout time.Duration) error {
	return waitUntil(ctx, timeout, 200*time.Millisecond, func() error {
		leaders := map[string]bool{}
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			if code, body, err := httpGet(ctx, n.monitorURL("/healthz")); err != nil || code != 200 {
				return fmt.Errorf("%s /healthz: %d %v %s", n.name, code, err, body)
			}
			code, body, err := httpGet(ctx, n.monitorURL("/jsz"))
			if err != nil || code != 200 {
				return fmt.Errorf("%s /jsz: %d %v", n.name, code, err)
			}
			var j jsz
			if err := json.Unmarshal(body, &j); err != nil {
				return fmt.Errorf("%s /jsz: %v", n.name, err)
			}
			if j.Meta == nil || j.Meta.Leader == "" {
				return fmt.Errorf("%s: no JetStream meta leader yet", n.name)
			}
			if j.Meta.ClusterSize != 3 {
				return fmt.Errorf("%s: meta cluster size %d, want 3", n.name, j.Meta.ClusterSize)
			}
			leaders[j.Meta.Leader] = true
		}
		if len(leaders) != 1 {
			return fmt.Errorf("nodes disagree on the meta leader: %v", leaders)
		}
		return nil
	})
}

// nodesWithClient returns the running nodes that have a client connection
// named name (from their /connz).
func (c *natsCluster) nodesWithClient(ctx context.Context, name string) []*natsNode {
	var out []*natsNode
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		code, body, err := httpGet(ctx, n.monitorURL("/connz?limit=1024"))
		if err != nil || code != 200 {
			continue
		}
		var cz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		if json.Unmarshal(body, &cz) != nil {
			continue
		}
		for _, cn := range cz.Connections {
			if cn.Name == name {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// leaderships lists the streams whose leader is the node called name.
func leaderships(ctx context.Context, js jetstream.JetStream, name string, streams []string) []string {
	var out []string
	for _, s := range streams {
		st, err := js.Stream(ctx, s)
		if err != nil {
			continue
		}
		info, err := st.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader == name {
			out = append(out, s)
		}
	}
	return out
}
