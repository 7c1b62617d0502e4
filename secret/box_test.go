package secret

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestBoxSealsAndOpens(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k", "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	box, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal(New("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatal("the sealed text shows the secret")
	}
	got, err := box.Open(sealed)
	if err != nil || got.Reveal() != "hunter2" {
		t.Fatalf("Open = %q, %v", got.Reveal(), err)
	}
	other, _ := NewBox(make([]byte, KeySize))
	if _, err := other.Open(sealed); !errors.Is(err, ErrUnsealable) {
		t.Errorf("another key opened it: %v", err)
	}
	if _, err := box.Open(sealed[:len(sealed)-4] + "AAAA"); !errors.Is(err, ErrUnsealable) {
		t.Errorf("an altered text opened: %v", err)
	}
}

func TestLoadOrCreateKeyKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.key")
	a, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey(path)
	if err != nil || string(a) != string(b) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	if _, err := NewBox([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}
