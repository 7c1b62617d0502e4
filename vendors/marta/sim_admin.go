package marta

import (
	"encoding/json"
	"net/http"
)

// adminHandler serves the simulator's controls under /_sim/ (see
// ServeHTTP). They are neither faulted nor authenticated nor logged.
func (s *Simulator) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/faults", s.faults.ServeAdmin())
	mux.HandleFunc("GET /_sim/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"/_sim/faults":    "GET, PUT/PATCH (partial), POST {failNext, status}, DELETE: the fault injector",
			"/_sim/requests":  "GET (?method=&path=), DELETE: the request log",
			"/_sim/codes":     "GET (?to=): the verification codes sent (the person's mailbox and phone)",
			"/_sim/customers": "GET: the customers (no passwords); POST a customer to seed it",
			"/_sim/campaigns": "GET: the campaigns and their data fields",
			"/_sim/tokens":    "DELETE: revoke every issued token",
		})
	})
	s.requests.ServeAdmin(mux, "path", func(r Request) (string, string) { return r.Method, r.Path })
	mux.HandleFunc("GET /_sim/codes", func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		out := []SentCode{}
		for _, c := range s.Codes() {
			if to == "" || c.To == contactKey(to) {
				out = append(out, c)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /_sim/customers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Customers())
	})
	mux.HandleFunc("POST /_sim/customers", func(w http.ResponseWriter, r *http.Request) {
		var c SimCustomer
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(&c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid customer: " + err.Error()})
			return
		}
		if c.CampaignID != "" && s.campaigns[c.CampaignID] == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "unknown campaignid"})
			return
		}
		writeJSON(w, http.StatusCreated, s.AddCustomer(c))
	})
	mux.HandleFunc("GET /_sim/campaigns", func(w http.ResponseWriter, _ *http.Request) {
		out := []SimCampaign{}
		for _, id := range s.order {
			out = append(out, *s.campaigns[id])
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("DELETE /_sim/tokens", func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
