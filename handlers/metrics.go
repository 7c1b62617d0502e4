package handlers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the handlers' Prometheus metrics. A nil *Metrics records
// nothing. Labels are bounded sets: flow and step names, outcome, and the
// contract's failure codes — never ids or addresses.
type Metrics struct {
	commands    *prometheus.CounterVec
	started     *prometheus.CounterVec
	endedFlows  *prometheus.CounterVec
	retries     *prometheus.CounterVec
	stales      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	parks       *prometheus.CounterVec
	replays     *prometheus.CounterVec
	otps        *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "commands_total",
			Help: "Commands received, by command type and what became of them (started, duplicate, rejected, steered).",
		}, []string{"command", "result"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "flows_started_total",
			Help: "Flows started, by flow.",
		}, []string{"flow"}),
		endedFlows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "flows_ended_total",
			Help: "Flows that reached their terminal event, by flow, outcome (completed, failed) and failure code.",
		}, []string{"flow", "outcome", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "step_retries_total",
			Help: "Step attempts retried after a transient vendor failure, by step.",
		}, []string{"step"}),
		stales: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "step_messages_stale_total",
			Help: "Step messages acknowledged without effect because the flow had moved on (redeliveries, duplicates).",
		}, []string{"step"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "dead_letters_total",
			Help: "Messages dead-lettered, by flow, handler and dead-letter code.",
		}, []string{"flow", "handler", "code"}),
		parks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "messages_parked_total",
			Help: "Messages parked (redelivered later, no retry budget spent) because their vendor's circuit was open, by vendor.",
		}, []string{"vendor"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "replayed_messages_total",
			Help: "Replayed or edited dead letters received, by handler and kind (replay, edit).",
		}, []string{"handler", "kind"}),
		otps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "registrar", Name: "otp_events_total",
			Help: "One-time codes, by flow and event: requested (a code was sent, resends included), rejected (a wrong code), expired, attempts_exceeded, cancelled.",
		}, []string{"flow", "event"}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.started, m.endedFlows, m.retries, m.stales, m.deadLetters, m.parks, m.replays, m.otps} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register handler metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) command(cmd, result string) {
	if m != nil {
		m.commands.WithLabelValues(cmd, result).Inc()
	}
}

func (m *Metrics) flowStarted(flow string) {
	if m != nil {
		m.started.WithLabelValues(flow).Inc()
	}
}

func (m *Metrics) ended(flow, outcome, code string) {
	if m != nil {
		m.endedFlows.WithLabelValues(flow, outcome, code).Inc()
	}
}

func (m *Metrics) retry(step string) {
	if m != nil {
		m.retries.WithLabelValues(step).Inc()
	}
}

func (m *Metrics) stale(step string) {
	if m != nil {
		m.stales.WithLabelValues(step).Inc()
	}
}

func (m *Metrics) deadLettered(flow, handler, code string) {
	if m != nil {
		m.deadLetters.WithLabelValues(flow, handler, code).Inc()
	}
}

func (m *Metrics) parked(vendor string) {
	if m != nil {
		m.parks.WithLabelValues(vendor).Inc()
	}
}

func (m *Metrics) replayed(handler, kind string) {
	if m != nil {
		m.replays.WithLabelValues(handler, kind).Inc()
	}
}

func (m *Metrics) otp(flow, event string) {
	if m != nil {
		m.otps.WithLabelValues(flow, event).Inc()
	}
}
