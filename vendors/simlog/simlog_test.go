package simlog

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestLogKeepsTheLastEntriesAndCountsThemAll(t *testing.T) {
	l := New[int](3)
	for i := 1; i <= 5; i++ {
		l.Add(i, Key{Method: "POST", Route: "/x", Status: 200 + i%2})
	}
	if got := l.All(); !slices.Equal(got, []int{3, 4, 5}) {
		t.Errorf("All = %v, want the last three", got)
	}
	if n := l.Count("POST", "/x", 0); n != 5 {
		t.Errorf("Count = %d, want 5", n)
	}
	if n := l.Count("", "", 201); n != 3 {
		t.Errorf("Count(201) = %d, want 3", n)
	}
	l.Reset()
	if len(l.All()) != 0 || l.Count("", "", 0) != 0 {
		t.Error("Reset left entries")
	}
	none := New[int](-1)
	none.Add(1, Key{})
	if len(none.All()) != 0 || none.Count("", "", 0) != 1 {
		t.Error("a negative bound keeps counts only")
	}
}

func TestStatusWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &StatusWriter{ResponseWriter: rec}
	_, _ = w.Write([]byte("x"))
	if w.Status != http.StatusOK {
		t.Errorf("Status = %d after a bare write", w.Status)
	}
	w2 := &StatusWriter{ResponseWriter: httptest.NewRecorder()}
	w2.WriteHeader(http.StatusTeapot)
	w2.WriteHeader(http.StatusOK)
	if w2.Status != http.StatusTeapot {
		t.Errorf("Status = %d, want the first one written", w2.Status)
	}
}
