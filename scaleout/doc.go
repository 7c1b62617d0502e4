// Package scaleout holds the scale-out correctness test: two `registrar
// serve` processes sharing one PostgreSQL schema, over a three-node NATS
// JetStream cluster of real nats-server processes, while one registrar and
// one NATS node are killed with SIGKILL in the middle of 1,000
// registrations. It runs only with REGISTRAR_SCALEOUT=1 (it is slow) and a
// PostgreSQL database in REGISTRAR_TEST_POSTGRES_DSN:
//
//	REGISTRAR_SCALEOUT=1 go test -count=1 -run TestScaleOut -v ./scaleout/
//
// The nats-server is $REGISTRAR_SCALEOUT_NATS_SERVER, else
// /usr/sbin/nats-server if it is 2.10 or newer, else the nats-server of
// go.mod's github.com/nats-io/nats-server/v2, built by the test (registrar
// needs 2.10: its otp consumer has several filter subjects).
//
// The package has no code outside its tests.
package scaleout
