package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// event is one message of REGISTRATION_EVENTS, with the fields this test
// reads.
type event struct {
	Seq            uint64
	Subject        string
	MsgID          string
	EventID        string `json:"eventId"`
	Type           string `json:"type"`
	RegistrationID string `json:"registrationId"`
	Result         *struct {
		ContactID string `json:"contactId"`
		Created   bool   `json:"created"`
	} `json:"result"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func isTerminal(typ string) bool { return typ == "completed" || typ == "failed" || typ == "rejected" }

func decodeEvent(m jetstream.Msg) event {
	var e event
	_ = json.Unmarshal(m.Data(), &e)
	e.Subject = m.Subject()
	e.MsgID = m.Headers().Get(nats.MsgIdHdr)
	if md, err := m.Metadata(); err == nil {
		e.Seq = md.Sequence.Stream
	}
	return e
}

// terminalWatch follows REGISTRATION_EVENTS with an ordered consumer and
// counts the registrations that have a terminal event (progress only: the
// verdict comes from a fresh read of the whole stream).
type terminalWatch struct {
	mu       sync.Mutex
	terminal map[string]bool
	last     time.Time // when the latest new terminal event arrived
	changed  chan struct{}
	stop     func()
}

func watchTerminals(ctx context.Context, js jetstream.JetStream, stream string) (*terminalWatch, error) {
	w := &terminalWatch{terminal: map[string]bool{}, changed: make(chan struct{}, 1)}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e := decodeEvent(m)
		if !isTerminal(e.Type) {
			return
		}
		w.mu.Lock()
		if !w.terminal[e.RegistrationID] {
			w.terminal[e.RegistrationID] = true
			w.last = time.Now()
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	w.stop = cc.Stop
	return w, nil
}

// count is how many registrations have a terminal event, and when the
// latest one arrived.
func (w *terminalWatch) count() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.terminal), w.last
}

// readStream reads every message of stream, from the first to the last
// sequence at the time of the call, with a fresh ordered consumer.
func readStream(ctx context.Context, js jetstream.JetStream, stream string) ([]jetstream.Msg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("stream %s: ordered consumer: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("stream %s: messages: %w", stream, err)
	}
	defer it.Stop()
	var out []jetstream.Msg
	for {
		type next struct {
			m   jetstream.Msg
			err error
		}
		ch := make(chan next, 1)
		go func() { m, err := it.Next(); ch <- next{m, err} }()
		select {
		case n := <-ch:
			if n.err != nil {
				return out, fmt.Errorf("stream %s: after %d messages: %w", stream, len(out), n.err)
			}
			out = append(out, n.m)
			md, err := n.m.Metadata()
			if err != nil {
				return out, err
			}
			if md.Sequence.Stream >= last {
				return out, nil
			}
		case <-ctx.Done():
			return out, fmt.Errorf("stream %s: read %d messages up to %d: %w", stream, len(out), last, ctx.Err())
		}
	}
}

// publishWithRetry publishes one command with its Nats-Msg-Id until the
// stream acknowledges it (a node may be down: the retry goes to another one,
// and the id makes a retry of a publish that did land harmless). It
// returns how many attempts failed and whether the stream saw a duplicate.
func publishWithRetry(ctx context.Context, js jetstream.JetStream, subject, msgID string, body []byte) (failed int, dup bool, err error) {
	for {
		m := nats.NewMsg(subject)
		m.Data = body
		m.Header.Set(nats.MsgIdHdr, msgID)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			return failed, ack.Duplicate, nil
		}
		failed++
		select {
		case <-ctx.Done():
			return failed, false, fmt.Errorf("publish %s: %w (last error: %v)", msgID, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
