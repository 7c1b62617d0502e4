package transport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process NATS JetStream server.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its file storage. Required.
	StoreDir string
	// Listen is host:port for client connections; port -1 picks a free port.
	// Empty means "127.0.0.1:-1".
	Listen string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10s.
	ReadyTimeout time.Duration
}

// StartEmbedded starts a NATS server with JetStream in this process. It is
// the same server as the nats-server binary. Shut it down with
// Shutdown and WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:-1"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen %q: bad port", cfg.Listen)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "registrar-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		// 64 KiB is the contract's limit for a command; allow larger
		// payloads on the wire so an oversized command reaches the service
		// and is rejected with an event instead of a publish error.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready for connections in time")
	}
	return ns, nil
}
