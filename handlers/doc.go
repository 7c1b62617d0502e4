// Package handlers holds registrar's message handlers: Intake, which turns
// registration commands into flows, and one handler per flow step (contact
// lookup, contact creation, …), each consuming its own durable consumer.
//
// Every handler ends in one store transaction that writes the flow's new
// state together with the messages it emits — events for upstream, the next
// step's message, or a dead letter — into the outbox. Nothing is published
// directly, so a crash at any point neither loses nor duplicates an effect;
// redelivered and stale messages are recognised by the flow's step sequence
// and acknowledged without effect.
//
// Acknowledgement mapping: a handler returns nil (ack) once its transaction
// committed — whatever the outcome, including rejected commands, failed
// flows and dead letters. It returns an error (nak with delay, redelivered)
// only when the store could not be written, so nothing is lost while the
// database is away.
package handlers
