// Package simlog is what every vendor simulator uses to record the requests
// it answered: a bounded log, oldest entries dropped first, with counts by
// method, route and status that go on past the bound (so a test can count
// side effects of any run), and a ResponseWriter that remembers the status.
package simlog

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
)

// DefaultMax is the number of entries a Log keeps by default.
const DefaultMax = 100_000

// Key is what a Log counts requests by.
type Key struct {
	Method string
	Route  string // the route template or URL path
	Status int
}

// Log is a bounded request log, safe for concurrent use.
type Log[R any] struct {
	mu     sync.Mutex
	max    int
	log    []R // a ring of at most max entries once full
	pos    int
	counts map[Key]int
}

// New returns a Log keeping the last max entries: 0 means DefaultMax, a
// negative max keeps none (counts only).
func New[R any](max int) *Log[R] {
	if max == 0 {
		max = DefaultMax
	}
	return &Log[R]{max: max, counts: map[Key]int{}}
}

// Add records r, counted under each key given (none: logged, not
// counted).
func (l *Log[R]) Add(r R, keys ...Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.counts[k]++
	}
	if l.max < 0 {
		return
	}
	if len(l.log) < l.max {
		l.log = append(l.log, r)
		return
	}
	l.log[l.pos] = r
	l.pos = (l.pos + 1) % l.max
}

// All returns the kept entries, oldest first.
func (l *Log[R]) All() []R {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]R, 0, len(l.log))
	out = append(out, l.log[l.pos:]...)
	return append(out, l.log[:l.pos]...)
}

// Count returns how many requests matched: an empty method or route, or a
// zero status, matches any.
func (l *Log[R]) Count(method, route string, status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, c := range l.counts {
		if (method == "" || k.Method == method) && (route == "" || k.Route == route) && (status == 0 || k.Status == status) {
			n += c
		}
	}
	return n
}

// Reset clears the entries and the counts.
func (l *Log[R]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log, l.pos = nil, 0
	clear(l.counts)
}

// ServeAdmin registers the request log's simulator controls on mux:
// GET /_sim/requests lists the kept entries, oldest first, filtered by the
// query parameters ?method= and ?<param>= (matched against what key
// returns for an entry; absent or empty matches any), as a JSON array;
// DELETE /_sim/requests empties the log (204).
func (l *Log[R]) ServeAdmin(mux *http.ServeMux, param string, key func(R) (method, value string)) {
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		method, value := r.URL.Query().Get("method"), r.URL.Query().Get(param)
		out := []R{}
		for _, e := range l.All() {
			m, v := key(e)
			if (method == "" || m == method) && (value == "" || v == value) {
				out = append(out, e)
			}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			http.Error(w, `{"message":"simulator: cannot encode the request log"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	})
	mux.HandleFunc("DELETE /_sim/requests", func(w http.ResponseWriter, _ *http.Request) {
		l.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}

// StatusWriter is an http.ResponseWriter that remembers the status written
// (200 when the handler wrote a body without one).
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

// WriteHeader implements http.ResponseWriter.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
