// Package transport connects registrar to NATS JetStream: it starts the
// embedded server used by the zero-setup run and the tests, creates the
// streams and durable consumers the service owns, and adapts JetStream pull
// consumers to Watermill's message.Subscriber with a bounded number of
// messages in flight.
//
// Why not watermill-nats' subscriber: its push queue subscriptions each
// process one message at a time and the server hands a backlog to whichever
// subscription it picks, so a 50 ms vendor call caps a subscription at 20
// messages/s and a backlog grabbed by one subscription outlives AckWait and is
// redelivered (see DESIGN.md). Subscriber here pulls from one durable
// consumer whose MaxAckPending equals the number of workers, so the server
// never hands out more messages than the process is working on, and every
// delivered message is processed at once.
package transport
