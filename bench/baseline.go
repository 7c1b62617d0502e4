package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Baseline measures what the NATS server alone does: n messages are put in
// a stream, then a raw nats.go loop consumes each from a durable pull
// consumer, publishes it on to a second stream (JetStream publish, async,
// confirmed) and acknowledges it — one hop of registrar without registrar.
// It returns hops per second; the streams are deleted afterwards.
func Baseline(ctx context.Context, js jetstream.JetStream, n int) (float64, error) {
	const in, out = "BENCH_BASELINE_IN", "BENCH_BASELINE_OUT"
	for _, name := range []string{in, out} {
		_ = js.DeleteStream(ctx, name)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.baseline." + name + ".>"},
			Storage: jetstream.FileStorage}); err != nil {
			return 0, err
		}
		defer js.DeleteStream(context.WithoutCancel(ctx), name) //nolint:errcheck // best effort
	}
	payload := []byte(`{"registrationId":"bench-000000","flow":"resamania.register","step":"resamania.lookup","seq":1}`)
	for i := range n {
		m := nats.NewMsg(fmt.Sprintf("bench.baseline.%s.%d", in, i%16))
		m.Data = payload
		if _, err := js.PublishMsgAsync(m); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, in, jetstream.ConsumerConfig{Durable: "baseline", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 1024, AckWait: time.Minute})
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	count := 0
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		fwd := nats.NewMsg("bench.baseline." + out + ".x")
		fwd.Data = m.Data()
		if _, err := js.PublishMsgAsync(fwd); err != nil {
			_ = m.Nak()
			return
		}
		_ = m.Ack()
		count++
		if count == n {
			close(done)
		}
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
