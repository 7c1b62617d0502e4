package main

import (
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs every sample flow end to end; skipped with -short")
	}
	var stdout, stderr syncBuffer
	code := runContext(t.Context(), []string{"demo", "--timeout", "2m"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("demo exited with %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "every flow reached its expected terminal state") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	}
}
