package dlq

import (
	"testing"
	"time"

	"github.com/registrar-dev/registrar/transport/natstest"
)

// TestListMessagesDeletedWhileReading: the messages List expects from the
// stream's state are deleted before it reads them; it must not wait for
// them for ever.
func TestListMessagesDeletedWhileReading(t *testing.T) {
	n := natstest.Start(t)
	js, topo := n.JS, n.Topo
	for range 4 {
		if _, err := js.Publish(t.Context(), "registration.dlq.intake", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(t.Context(), topo.DeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	defer func(w time.Duration) { idleWait, testHookListed = w, nil }(idleWait)
	idleWait = 100 * time.Millisecond
	c := New(js, topo.DeadLetters)

	for _, tc := range []struct {
		name   string
		delete []uint64
		want   int
	}{
		{"all but the first", []uint64{2, 3, 4}, 1},
		{"all", []uint64{1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testHookListed = func() {
				for _, seq := range tc.delete {
					if err := s.DeleteMsg(t.Context(), seq); err != nil {
						t.Error(err)
					}
				}
			}
			got, err := c.List(t.Context(), Filter{})
			if err != nil || len(got) != tc.want {
				t.Errorf("List: %d dead letters, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}
