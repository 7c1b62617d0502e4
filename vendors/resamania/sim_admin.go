package resamania

import (
	"encoding/json"
	"net/http"
)

// adminHandler serves the simulator's controls under /_sim/ (see
// ServeHTTP). They are neither faulted nor authenticated.
func (s *Simulator) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/faults", s.faults.ServeAdmin())
	mux.HandleFunc("GET /_sim/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", map[string]string{
			"/_sim/faults":   "GET, PUT/PATCH (partial), POST {failNext, status}, DELETE: the fault injector",
			"/_sim/requests": "GET (?method=&route=), DELETE: the request log",
			"/_sim/contacts": "GET ?clientToken=: the contacts; POST {clientToken, …contact}: seed one",
			"/_sim/sales":    "GET ?clientToken=: the sales; POST {clientToken, id, contactId}: seed one",
			"/_sim/sms":      "GET (?signatureRequest=IRI): the SMS sent, with their codes (the simulator's phone)",
			"/_sim/accounts": "GET: accounts, clubs and their IRIs",
			"/_sim/tokens":   "DELETE: revoke every issued token",
		})
	})
	s.requests.ServeAdmin(mux, "route", func(r Request) (string, string) { return r.Method, r.Route })
	mux.HandleFunc("GET /_sim/contacts", func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.adminAccount(w, r.URL.Query().Get("clientToken"))
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, "application/json", s.Contacts(a.ClientToken))
	})
	mux.HandleFunc("POST /_sim/contacts", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ClientToken string `json:"clientToken"`
			Contact
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, "application/json", map[string]string{"message": "invalid contact: " + err.Error()})
			return
		}
		a, ok := s.adminAccount(w, in.ClientToken)
		if !ok {
			return
		}
		writeJSON(w, http.StatusCreated, "application/json", s.AddContact(a.ClientToken, in.Contact))
	})
	mux.HandleFunc("GET /_sim/sales", func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.adminAccount(w, r.URL.Query().Get("clientToken"))
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, "application/json", s.Sales(a.ClientToken))
	})
	mux.HandleFunc("POST /_sim/sales", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ClientToken string `json:"clientToken"`
			SimSale
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSimBody)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, "application/json", map[string]string{"message": "invalid sale: " + err.Error()})
			return
		}
		a, ok := s.adminAccount(w, in.ClientToken)
		if !ok {
			return
		}
		writeJSON(w, http.StatusCreated, "application/json", s.AddSale(a.ClientToken, in.SimSale))
	})
	mux.HandleFunc("GET /_sim/sms", func(w http.ResponseWriter, r *http.Request) {
		want := r.URL.Query().Get("signatureRequest")
		out := []SMS{}
		for _, m := range s.SMS() {
			if want == "" || m.SignatureRequestID == want {
				out = append(out, m)
			}
		}
		writeJSON(w, http.StatusOK, "application/json", out)
	})
	mux.HandleFunc("GET /_sim/accounts", func(w http.ResponseWriter, _ *http.Request) {
		type clubJSON struct {
			ID            string `json:"id"`
			NetworkNodeID string `json:"networkNodeId,omitempty"`
			Name          string `json:"name"`
			NoSharing     bool   `json:"noSharing"`
		}
		type accountJSON struct {
			ClientToken    string     `json:"clientToken"`
			ClientID       string     `json:"clientId"`
			NetworkNodeID  string     `json:"networkNodeId"`
			RequiredFields []string   `json:"requiredFields"`
			Clubs          []clubJSON `json:"clubs"`
		}
		out := []accountJSON{}
		for _, a := range s.order {
			aj := accountJSON{ClientToken: a.ClientToken, ClientID: a.ClientID,
				NetworkNodeID: NetworkNodeIRI(a.ClientToken, a.NetworkNodeID), RequiredFields: a.RequiredFields, Clubs: []clubJSON{}}
			for _, c := range a.Clubs {
				cj := clubJSON{ID: ClubIRI(a.ClientToken, c.ID), Name: c.Name, NoSharing: c.NoSharing}
				if c.NetworkNodeID > 0 {
					cj.NetworkNodeID = NetworkNodeIRI(a.ClientToken, c.NetworkNodeID)
				}
				aj.Clubs = append(aj.Clubs, cj)
			}
			out = append(out, aj)
		}
		writeJSON(w, http.StatusOK, "application/json", out)
	})
	mux.HandleFunc("DELETE /_sim/tokens", func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// adminAccount finds the account named by clientToken; with a single
// account the name may be omitted. It writes the error otherwise.
func (s *Simulator) adminAccount(w http.ResponseWriter, clientToken string) (*account, bool) {
	if clientToken == "" && len(s.order) == 1 {
		return s.order[0], true
	}
	a := s.accounts[clientToken]
	if a == nil {
		writeJSON(w, http.StatusNotFound, "application/json", map[string]string{"message": "unknown clientToken; give ?clientToken= or \"clientToken\""})
		return nil, false
	}
	return a, true
}
