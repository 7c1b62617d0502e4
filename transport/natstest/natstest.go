// Package natstest starts a real NATS JetStream server for tests — the
// embedded server registrar itself runs, never a mock — with registrar's
// streams created.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/registrar-dev/registrar/transport"
)

// Env is a running server, a connection to it and the streams.
type Env struct {
	Server *server.Server
	URL    string
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Topo   transport.Topology
}

// Start starts an embedded JetStream server storing under a temporary
// directory, connects to it and creates registrar's streams with their
// default names. Everything is stopped when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartTopology(t, transport.Topology{}.WithDefaults())
}

// StartTopology is Start with the streams of topo.
func StartTopology(t testing.TB, topo transport.Topology) *Env {
	t.Helper()
	ns, err := transport.StartEmbedded(transport.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.ProvisionStreams(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	return &Env{Server: ns, URL: ns.ClientURL(), Conn: nc, JS: js, Topo: topo}
}
