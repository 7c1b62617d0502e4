package service_test

import (
	"slices"
	"testing"
	"time"

	"github.com/registrar-dev/registrar/store/postgres/pgtest"
)

// TestEndToEndOnPostgreSQL runs registrations through the whole service on
// a real PostgreSQL store: a new person, a duplicate command, a restart.
func TestEndToEndOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshSchema(t, pgtest.DSN(t))
	e := startEnv(t, withStore(dsn))
	body := e.register("pg-new", "acme", "pg@example.com", "")
	publish(t, e.js, registerSubject, "pg-1", body)
	publish(t, e.js, registerSubject, "pg-2", body)
	if got, want := types(e.terminal("pg-new")), []string{"resamania.contact_created", "completed"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}

	e.restart()
	publish(t, e.js, registerSubject, "", e.register("pg-after", "acme", "pg-after@example.com", ""))
	e.terminal("pg-after")
	time.Sleep(300 * time.Millisecond)
	if got := countTypes(e.events.of("pg-new")); got["completed"] != 1 || got["resamania.contact_created"] != 1 {
		t.Errorf("events of pg-new = %v, want each once", got)
	}
	if n := e.contactCreations(); n != 2 {
		t.Errorf("contacts created = %d, want 2", n)
	}
	f, err := e.svc.Store().Flow(t.Context(), "pg-new")
	if err != nil || f.Status != "completed" {
		t.Errorf("stored flow = %+v, %v", f.Status, err)
	}
}
