package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects of the streams the service owns. The command, event and dead
// letter subjects are the public contract (CONTRACT.md); step subjects are
// internal.
const (
	CommandSubjects    = "registration.cmd.>"
	EventSubjects      = "registration.evt.>"
	DeadLetterSubjects = "registration.dlq.>"
	StepSubjectPrefix  = "registrar.step."
	StepSubjects       = StepSubjectPrefix + ">"
)

// Topology names the streams and sets their shared options.
type Topology struct {
	Commands    string // default REGISTRATION_COMMANDS
	Events      string // default REGISTRATION_EVENTS
	DeadLetters string // default REGISTRATION_DLQ
	Steps       string // default REGISTRAR_STEPS
	// Replicas of every stream created (1, or 3 on a cluster).
	Replicas int
	// DuplicateWindow is how long the server remembers Nats-Msg-Id values
	// to drop re-publishes. The outbox relies on it to make a re-publish
	// after a crash harmless. Default 5m.
	DuplicateWindow time.Duration
}

func (t *Topology) setDefaults() {
	if t.Commands == "" {
		t.Commands = "REGISTRATION_COMMANDS"
	}
	if t.Events == "" {
		t.Events = "REGISTRATION_EVENTS"
	}
	if t.DeadLetters == "" {
		t.DeadLetters = "REGISTRATION_DLQ"
	}
	if t.Steps == "" {
		t.Steps = "REGISTRAR_STEPS"
	}
	if t.Replicas == 0 {
		t.Replicas = 1
	}
	if t.DuplicateWindow == 0 {
		t.DuplicateWindow = 5 * time.Minute
	}
}

// WithDefaults returns t with its empty fields set to their defaults.
func (t Topology) WithDefaults() Topology {
	t.setDefaults()
	return t
}

// StreamConfigs returns the configuration of each stream the service
// creates when it is missing.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	t.setDefaults()
	base := func(name, subjects, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subjects},
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
		}
	}
	cmds := base(t.Commands, CommandSubjects, "registration commands published by upstream systems")
	cmds.MaxAge = 7 * 24 * time.Hour
	evts := base(t.Events, EventSubjects, "registration events emitted by registrar")
	evts.MaxAge = 7 * 24 * time.Hour
	dlq := base(t.DeadLetters, DeadLetterSubjects, "registration messages that could not be processed")
	steps := base(t.Steps, StepSubjects, "registrar's internal flow steps")
	// Each step subject has exactly one consumer: a work queue deletes a
	// step message once it is acknowledged.
	steps.Retention = jetstream.WorkQueuePolicy
	return []jetstream.StreamConfig{cmds, evts, dlq, steps}
}

// ProvisionStreams creates the streams that are missing. Streams that exist
// are left as they are (an operator may have tuned them); a stream whose
// subjects do not cover the expected ones is an error.
func ProvisionStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	for _, cfg := range t.StreamConfigs() {
		s, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				return fmt.Errorf("create stream %s: %w", cfg.Name, err)
			}
		case err != nil:
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		default:
			got := s.CachedInfo().Config.Subjects
			if !contains(got, cfg.Subjects[0]) {
				return fmt.Errorf("stream %s exists with subjects %v, want %v", cfg.Name, got, cfg.Subjects)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ConsumerSpec describes one durable pull consumer.
type ConsumerSpec struct {
	Stream        string
	Durable       string // the handler's name with dots replaced; never rename casually
	FilterSubject string
	// FilterSubjects, when set, replaces FilterSubject with several.
	FilterSubjects []string
	// MaxAckPending bounds the messages handed out and not yet acknowledged:
	// set it to the number of workers so no message waits in a client
	// buffer while its AckWait runs.
	MaxAckPending int
	// AckWait is the server's redelivery timer; it must exceed the longest
	// time a handler may take (the subscriber also extends it with
	// InProgress while a handler runs).
	AckWait time.Duration
}

// ProvisionConsumer creates the durable consumer or updates the options the
// service owns on an existing one. Durable consumers and their ack floors
// survive restarts; the service never deletes them.
func ProvisionConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		Description:    "registrar handler " + spec.Durable,
		FilterSubject:  spec.FilterSubject,
		FilterSubjects: spec.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  spec.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// Many in flight means many pull requests waiting at once.
		MaxWaiting: 512,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}
