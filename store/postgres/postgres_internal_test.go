package postgres

import "testing"

func TestSetsPoolMaxConns(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://u@h/db", false},
		{"postgres://u@h/db?sslmode=disable&pool_max_conns=3", true},
		{"postgresql://u@h/db?pool_max_conns=3", true},
		{"postgres://u@h/db?pool_min_conns=3", false},
		{"host=h user=u", false},
		{"host=h pool_max_conns=3 user=u", true},
		{"host=h pool_max_conns = 3", true},
		{"host=h application_name='pool_max_conns=3'", false},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			if got := setsPoolMaxConns(tt.dsn); got != tt.want {
				t.Errorf("setsPoolMaxConns(%q) = %v, want %v", tt.dsn, got, tt.want)
			}
		})
	}
}
