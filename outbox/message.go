// Package outbox relays messages that were written to the store inside a
// business transaction (the transactional outbox) to NATS JetStream.
//
// A handler never publishes to NATS itself: it appends Messages to the store
// in the same transaction that changes the flow's state, and the Forwarder
// publishes them afterwards with Nats-Msg-Id set to Message.ID, so a crash
// between the commit and the publish neither loses nor duplicates anything.
package outbox

import "time"

// Message is one message waiting in the outbox.
type Message struct {
	// ID is unique per message and becomes the Nats-Msg-Id header, so the
	// server drops a second publish of the same row (for events, the eventId).
	ID string
	// Subject is the NATS subject to publish to.
	Subject string
	// Key orders messages: the forwarder publishes messages with the same
	// Key in the order they were appended (the registrationId).
	Key string
	// Headers are NATS headers to send besides Nats-Msg-Id.
	Headers map[string]string
	// Payload is the message body.
	Payload []byte
}

// Record is a Message as stored, with the sequence the store gave it.
// Sequences increase in append order.
type Record struct {
	Seq       int64
	CreatedAt time.Time
	Message
}
