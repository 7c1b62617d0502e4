package cloudsuite

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
)

// adminHandler serves the simulator's controls under /_sim/ (see
// ServeHTTP). They are neither faulted nor authenticated nor logged.
func (s *Simulator) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/faults", s.faults.ServeAdmin())
	mux.HandleFunc("GET /_sim/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"/_sim/faults":                     "GET, PUT/PATCH (partial), POST {failNext, status}, DELETE: the fault injector",
			"/_sim/requests":                   "GET (?method=&path=), DELETE: the request log",
			"/_sim/reset":                      "POST: empty the simulator (users, customers, profiles, activations, request log, faults)",
			"/_sim/tokens":                     "DELETE: revoke every issued token",
			"/_sim/origins":                    "GET: the origins, with their numbers of users and customers",
			"/_sim/origins/{origin}/users":     "GET: the users; POST a user {key?, email, first_name, last_name, create_date?, registration?, active?, profiles?} to seed it",
			"/_sim/origins/{origin}/customers": "GET: the customers; POST a customer {key, …} to seed it",
			"/_sim/activations":                "GET: the activation e-mails sent, by user key",
		})
	})
	s.requests.ServeAdmin(mux, "path", func(r Request) (string, string) { return r.Method, r.Path })
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/tokens", func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/origins", func(w http.ResponseWriter, _ *http.Request) {
		type originInfo struct {
			Origin    string `json:"origin"`
			Users     int    `json:"users"`
			Customers int    `json:"customers"`
		}
		s.mu.Lock()
		out := make([]originInfo, 0, len(s.origins))
		for o, org := range s.origins {
			out = append(out, originInfo{o, len(org.users), len(org.customers)})
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b originInfo) int { return cmp.Compare(a.Origin, b.Origin) })
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /_sim/origins/{origin}/users", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Users(r.PathValue("origin")))
	})
	mux.HandleFunc("POST /_sim/origins/{origin}/users", func(w http.ResponseWriter, r *http.Request) {
		var u SimUser
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody))
		dec.UseNumber()
		if err := dec.Decode(&u); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid user: " + err.Error()})
			return
		}
		origin := r.PathValue("origin")
		key := s.AddUser(origin, u)
		user, _ := s.User(origin, key)
		writeJSON(w, http.StatusCreated, user)
	})
	mux.HandleFunc("GET /_sim/origins/{origin}/customers", func(w http.ResponseWriter, r *http.Request) {
		origin := r.PathValue("origin")
		s.mu.Lock()
		out := []any{}
		if org := s.origins[origin]; org != nil {
			keys := make([]string, 0, len(org.customers))
			for k := range org.customers {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				out = append(out, deepCopy(org.customers[k]))
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/origins/{origin}/customers", func(w http.ResponseWriter, r *http.Request) {
		var c map[string]any
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody))
		dec.UseNumber()
		err := dec.Decode(&c)
		key, _ := c["key"].(string)
		if err != nil || key == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid customer: a JSON object with a string \"key\" is required"})
			return
		}
		origin := r.PathValue("origin")
		s.AddCustomer(origin, key, c)
		cust, _ := s.Customer(origin, key)
		writeJSON(w, http.StatusCreated, cust)
	})
	mux.HandleFunc("GET /_sim/activations", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		out := make(map[string]int, len(s.activations))
		for k, n := range s.activations {
			out[k] = n
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}
