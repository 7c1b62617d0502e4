package cloudsuite

import (
	"testing"

	"github.com/registrar-dev/registrar/secret"
)

func TestNextPageStaysOnBaseURLsOrigin(t *testing.T) {
	c, err := NewClient(Config{BaseURL: "https://api.cloudsuite.io", TokenURL: "https://id.cloudsuite.io/t", ClientID: "c",
		ClientSecret: secret.New("s"), Origin: "O"})
	if err != nil {
		t.Fatal(err)
	}
	cur := "https://api.cloudsuite.io/api/origin/O/user/?page=1"
	tests := []struct {
		next, want string
		refused    bool
	}{
		{next: "https://api.cloudsuite.io/api/origin/O/user/?page=2", want: "https://api.cloudsuite.io/api/origin/O/user/?page=2"},
		{next: "/api/origin/O/user/?page=2", want: "https://api.cloudsuite.io/api/origin/O/user/?page=2"},
		// A TLS-terminating proxy's http link on the same host is upgraded.
		{next: "http://api.cloudsuite.io/api/origin/O/user/?page=2", want: "https://api.cloudsuite.io/api/origin/O/user/?page=2"},
		{next: "http://api.cloudsuite.io:8080/api/origin/O/user/?page=2", refused: true},
		{next: "https://evil.example.com/api/origin/O/user/?page=2", refused: true},
		{next: "https://user@api.cloudsuite.io/api/origin/O/user/?page=2", refused: true},
	}
	for _, tt := range tests {
		got, err := c.nextPage(cur, tt.next)
		if tt.refused {
			if err == nil || !HasCode(err, CodeForeignNext) {
				t.Errorf("nextPage(%q) = %q, %v; want refused", tt.next, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("nextPage(%q) = %q, %v; want %q", tt.next, got, err, tt.want)
		}
	}
}
