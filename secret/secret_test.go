package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestStringNeverShowsItsValue(t *testing.T) {
	s := New("hunter2")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", s, "struct", struct{ P String }{s})
	js, err := json.Marshal(struct{ P String }{s})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", struct{ P String }{s}),
		"%#v": fmt.Sprintf("%#v", s), "json": string(js), "slog": logs.String(),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, Marker) {
			t.Errorf("%s does not show the marker: %s", name, out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
}

func TestStringUnmarshals(t *testing.T) {
	var v struct {
		P String `json:"p"`
	}
	if err := json.Unmarshal([]byte(`{"p":"abc"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.P.Reveal() != "abc" || v.P.IsZero() {
		t.Fatalf("got %q", v.P.Reveal())
	}
}
