package dlq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/registrar-dev/registrar/events"
	"github.com/registrar-dev/registrar/handlers"
)

// DefaultRate is the replay rate, in messages per second, when
// ReplayOptions.Rate is not positive.
const DefaultRate = 50

// Outcomes of a ReplayItem.
const (
	OutcomeReplayed        = "replayed"
	OutcomeAlreadyReplayed = "already_replayed"
	OutcomeWouldReplay     = "would_replay"
	outcomeFailedPrefix    = "failed: "
)

// idleWait is how long List waits for the next message before it checks
// whether any is left to come (messages deleted while it reads).
var idleWait = 2 * time.Second

// testHookListed, when set, runs in List between reading the stream's state
// and reading its messages.
var testHookListed func()

// Client reads and replays the dead letters of one stream.
type Client struct {
	js     jetstream.JetStream
	stream string
}

// New returns a client of the dead-letter stream named stream (normally
// REGISTRATION_DLQ) over js.
func New(js jetstream.JetStream, stream string) *Client {
	return &Client{js: js, stream: stream}
}

func (c *Client) handle(ctx context.Context) (jetstream.Stream, error) {
	s, err := c.js.Stream(ctx, c.stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.stream, err)
	}
	return s, nil
}

// List reads the stream up to its last sequence at the time of the call and
// returns the dead letters f matches, by ascending sequence. With f.Seqs it
// reads only those sequences.
func (c *Client) List(ctx context.Context, f Filter) ([]DeadLetter, error) {
	s, err := c.handle(ctx)
	if err != nil {
		return nil, err
	}
	if len(f.Seqs) > 0 {
		return c.listSeqs(ctx, s, f)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.stream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	if testHookListed != nil {
		testHookListed()
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(info.State.FirstSeq, 1),
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", c.stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", c.stream, err)
	}
	defer it.Stop()

	var out []DeadLetter
	seen := info.State.FirstSeq - 1 // the last sequence read
	for seen < last {
		nctx, cancel := context.WithTimeout(ctx, idleWait)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				// Nothing came: done if the messages left were deleted
				// meanwhile.
				more, err := c.anyBetween(ctx, s, seen+1, last)
				if err != nil {
					return nil, err
				}
				if !more {
					break
				}
				continue
			}
			return nil, fmt.Errorf("read stream %s: %w", c.stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", c.stream, err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			break
		}
		seen = seq
		d := newDeadLetter(seq, msg.Subject(), meta.Timestamp, msg.Headers(), msg.Data())
		if f.Match(d) {
			out = append(out, d)
		}
		if meta.NumPending == 0 {
			break
		}
	}
	return out, nil
}

// anyBetween reports whether the stream holds a message with a sequence in
// [from, to].
func (c *Client) anyBetween(ctx context.Context, s jetstream.Stream, from, to uint64) (bool, error) {
	if from > to {
		return false, nil
	}
	m, err := s.GetMsg(ctx, from, jetstream.WithGetMsgSubject(">"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read stream %s: %w", c.stream, err)
	}
	return m.Sequence <= to, nil
}

func (c *Client) listSeqs(ctx context.Context, s jetstream.Stream, f Filter) ([]DeadLetter, error) {
	seqs := slices.Clone(f.Seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	var out []DeadLetter
	for _, seq := range seqs {
		d, err := c.get(ctx, s, seq)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.Match(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// Get returns the dead letter at seq, or ErrNotFound.
func (c *Client) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	s, err := c.handle(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	return c.get(ctx, s, seq)
}

func (c *Client) get(ctx context.Context, s jetstream.Stream, seq uint64) (DeadLetter, error) {
	if seq == 0 {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	return newDeadLetter(m.Sequence, m.Subject, m.Time, m.Header, m.Data), nil
}

// exists reports whether the stream still holds seq.
func (c *Client) exists(ctx context.Context, s jetstream.Stream, seq uint64) (bool, error) {
	_, err := c.get(ctx, s, seq)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// delete deletes seq from the stream; a sequence already gone is fine.
func (c *Client) delete(ctx context.Context, s jetstream.Stream, seq uint64) (deleted bool, err error) {
	err = s.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	// The server answers a delete of a missing message with an error:
	// check whether the message is gone.
	if ok, gerr := c.exists(ctx, s, seq); gerr == nil && !ok {
		return false, nil
	}
	return false, fmt.Errorf("delete dead letter %d: %w", seq, err)
}

// ReplayOptions tune Replay and Edit.
type ReplayOptions struct {
	Rate     float64 // messages per second; <= 0 means DefaultRate (50)
	DryRun   bool    // publish and delete nothing; items are "would_replay"
	By       string  // who replays (user@host), in header Registrar-Replayed-By
	Progress func(done, total int)
}

// ReplayItem is what became of one dead letter.
type ReplayItem struct {
	Seq     uint64
	Subject string    // the subject published to (the original subject)
	MsgID   string    // the Nats-Msg-Id published with
	At      time.Time // when it was published (or would have been)
	// Outcome is "replayed", "already_replayed" (the server already had
	// the message id, or the dead letter was already gone: someone else
	// replayed or purged it), "would_replay" (dry run) or "failed: <err>".
	Outcome string
}

// Failed reports whether the item's outcome is a failure.
func (it ReplayItem) Failed() bool { return strings.HasPrefix(it.Outcome, outcomeFailedPrefix) }

// ReplayResult sums up a Replay.
type ReplayResult struct {
	Replayed, AlreadyReplayed, Failed int
	Items                             []ReplayItem // in the order of the dead letters given
}

// ReplayMsgID is the Nats-Msg-Id Replay publishes the dead letter at seq of
// stream with.
func ReplayMsgID(stream string, seq uint64) string {
	return "replay:" + stream + ":" + strconv.FormatUint(seq, 10)
}

// EditMsgID is the Nats-Msg-Id Edit publishes body, the correction of the
// dead letter at seq of stream, with.
func EditMsgID(stream string, seq uint64, body []byte) string {
	sum := sha256.Sum256(body)
	return "edit:" + stream + ":" + strconv.FormatUint(seq, 10) + ":" + hex.EncodeToString(sum[:])[:12]
}

// Replay publishes each dead letter back to its original subject and
// deletes it (see the package documentation). Per-message failures are in
// the result; the error is only for a cancelled context or an unreachable
// stream, with the result so far.
func (c *Client) Replay(ctx context.Context, dls []DeadLetter, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	s, err := c.handle(ctx)
	if err != nil {
		return res, err
	}
	r := opts.Rate
	if r <= 0 {
		r = DefaultRate
	}
	lim := rate.NewLimiter(rate.Limit(r), 1)
	for i, d := range dls {
		item := ReplayItem{Seq: d.Seq, Subject: d.OriginalSubject, MsgID: ReplayMsgID(c.stream, d.Seq)}
		if opts.DryRun {
			item.At = time.Now()
			item.Outcome = OutcomeWouldReplay
			if err := checkTarget(d); err != nil {
				item.Outcome = outcomeFailedPrefix + err.Error()
				res.Failed++
			}
		} else {
			if err := lim.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				return res, err
			}
			item = c.replayOne(ctx, s, d, item, opts.By)
			switch item.Outcome {
			case OutcomeReplayed:
				res.Replayed++
			case OutcomeAlreadyReplayed:
				res.AlreadyReplayed++
			default:
				res.Failed++
			}
		}
		res.Items = append(res.Items, item)
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(dls))
		}
	}
	return res, nil
}

func (c *Client) replayOne(ctx context.Context, s jetstream.Stream, d DeadLetter, item ReplayItem, by string) ReplayItem {
	item.At = time.Now()
	fail := func(err error) ReplayItem {
		item.Outcome = outcomeFailedPrefix + err.Error()
		return item
	}
	if err := checkTarget(d); err != nil {
		return fail(err)
	}
	// A dead letter already deleted was replayed (or purged) by someone
	// else: publishing it again could replay it twice once the server's
	// duplicate window has passed.
	ok, err := c.exists(ctx, s, d.Seq)
	if err != nil {
		return fail(err)
	}
	if !ok {
		item.Outcome = OutcomeAlreadyReplayed
		return item
	}
	item.At = time.Now()
	msg := c.replayMsg(d, d.Body, item.MsgID, by, item.At)
	msg.Header.Set(handlers.HeaderReplayOf, c.ref(d.Seq))
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return fail(fmt.Errorf("publish to %s: %w", d.OriginalSubject, err))
	}
	if _, err := c.delete(ctx, s, d.Seq); err != nil {
		return fail(fmt.Errorf("published as %s but not removed from the dead letters: %w", item.MsgID, err))
	}
	if ack.Duplicate {
		item.Outcome = OutcomeAlreadyReplayed
	} else {
		item.Outcome = OutcomeReplayed
	}
	return item
}

// checkTarget refuses a dead letter that cannot be published back.
func checkTarget(d DeadLetter) error {
	switch {
	case d.OriginalSubject == "":
		return fmt.Errorf("dead letter %d has no %s header", d.Seq, handlers.HeaderOriginalSubject)
	case strings.HasPrefix(d.OriginalSubject, events.DeadLetterSubjectPrefix):
		return fmt.Errorf("dead letter %d: original subject %s is a dead-letter subject", d.Seq, d.OriginalSubject)
	}
	return nil
}

func (c *Client) ref(seq uint64) string { return c.stream + ":" + strconv.FormatUint(seq, 10) }

// replayMsg builds the message that publishes body in place of d: d's
// headers without the dead-letter and Nats-* ones (but with
// Registrar-Original-Msg-Id), with msgID and the replay marks.
func (c *Client) replayMsg(d DeadLetter, body []byte, msgID, by string, at time.Time) *nats.Msg {
	msg := nats.NewMsg(d.OriginalSubject)
	msg.Data = body
	for k, v := range d.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		msg.Header[k] = slices.Clone(v)
	}
	for _, k := range deadLetterHeaders {
		msg.Header.Del(k)
	}
	msg.Header.Set(nats.MsgIdHdr, msgID)
	msg.Header.Set(HeaderReplayedAt, at.UTC().Format(time.RFC3339Nano))
	if by != "" {
		msg.Header.Set(HeaderReplayedBy, by)
	}
	return msg
}

// Edit publishes body, a corrected version of d's body, to d's original
// subject (see the package documentation). It validates nothing and keeps
// the dead letter. With opts.DryRun it publishes nothing.
func (c *Client) Edit(ctx context.Context, d DeadLetter, body []byte, opts ReplayOptions) (ReplayItem, error) {
	item := ReplayItem{Seq: d.Seq, Subject: d.OriginalSubject, MsgID: EditMsgID(c.stream, d.Seq, body), At: time.Now()}
	if err := checkTarget(d); err != nil {
		item.Outcome = outcomeFailedPrefix + err.Error()
		return item, err
	}
	if opts.DryRun {
		item.Outcome = OutcomeWouldReplay
		return item, nil
	}
	msg := c.replayMsg(d, body, item.MsgID, opts.By, item.At)
	msg.Header.Set(handlers.HeaderEditedFrom, c.ref(d.Seq))
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		err = fmt.Errorf("publish to %s: %w", d.OriginalSubject, err)
		item.Outcome = outcomeFailedPrefix + err.Error()
		return item, err
	}
	if ack.Duplicate {
		item.Outcome = OutcomeAlreadyReplayed
	} else {
		item.Outcome = OutcomeReplayed
	}
	return item, nil
}

// Purge deletes the dead letters from the stream and returns how many it
// deleted; those already gone are not counted.
func (c *Client) Purge(ctx context.Context, dls []DeadLetter) (int, error) {
	s, err := c.handle(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dls {
		deleted, err := c.delete(ctx, s, d.Seq)
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}
