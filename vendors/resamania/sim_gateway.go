package resamania

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gateway is the Gravitee gateway in front of the token endpoint and the
// API: API key, then rate limits, then the backend.
func (s *Simulator) gateway(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	if !st.matched {
		gatewayError(w, http.StatusNotFound, "No context-path matches the request URI.")
		return
	}
	key := r.Header.Get("X-Gravitee-Api-Key")
	a := s.byAPIKey[key]
	if key == "" || a == nil || (st.acct != nil && st.acct != a) {
		gatewayError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if !s.limits.allow(w, key, s.now()) {
		return
	}
	if st.route == tokenEndpointRoute {
		s.tokenEndpoint(w, r, a)
		return
	}
	s.serveAPI(w, r, a, st)
}

// gatewayError writes the gateway's own error body.
func gatewayError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string]any{"message": msg, "http_status_code": status})
}

// gatewayLimits counts requests per API key in fixed windows: a minute
// (rate limit) and 100 ms (spike arrest).
type gatewayLimits struct {
	perMinute, spike int // <= 0: off

	mu   sync.Mutex
	keys map[string]*keyWindows
}

type keyWindows struct {
	minute, spike           int64 // window numbers
	minuteCount, spikeCount int
}

func newGatewayLimits(rl RateLimit) *gatewayLimits {
	l := &gatewayLimits{perMinute: rl.PerMinute, spike: rl.SpikeArrest, keys: map[string]*keyWindows{}}
	if l.perMinute == 0 {
		l.perMinute = DefaultRatePerMinute
	}
	if l.spike == 0 {
		l.spike = DefaultSpikeArrest
	}
	return l
}

// allow counts a request of key at now, sets the X-Rate-Limit-* and
// X-Spike-Arrest-* headers, and answers 429 (with Retry-After) when a
// window is full. Refused requests are not counted.
func (l *gatewayLimits) allow(w http.ResponseWriter, key string, now time.Time) bool {
	if l.perMinute <= 0 && l.spike <= 0 {
		return true
	}
	ms := now.UnixMilli()
	minute, spike := ms/rateLimitWindow.Milliseconds(), ms/spikeArrestWindow.Milliseconds()
	minuteReset, spikeReset := (minute+1)*rateLimitWindow.Milliseconds(), (spike+1)*spikeArrestWindow.Milliseconds()

	l.mu.Lock()
	k := l.keys[key]
	if k == nil {
		k = &keyWindows{}
		l.keys[key] = k
	}
	if k.minute != minute {
		k.minute, k.minuteCount = minute, 0
	}
	if k.spike != spike {
		k.spike, k.spikeCount = spike, 0
	}
	minuteFull := l.perMinute > 0 && k.minuteCount >= l.perMinute
	spikeFull := l.spike > 0 && k.spikeCount >= l.spike
	if !minuteFull && !spikeFull {
		k.minuteCount++
		k.spikeCount++
	}
	minuteLeft, spikeLeft := l.perMinute-k.minuteCount, l.spike-k.spikeCount
	l.mu.Unlock()

	h := w.Header()
	if l.perMinute > 0 {
		h.Set("X-Rate-Limit-Limit", strconv.Itoa(l.perMinute))
		h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(minuteLeft, 0)))
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(minuteReset, 10))
	}
	if l.spike > 0 {
		h.Set("X-Spike-Arrest-Limit", strconv.Itoa(l.spike))
		h.Set("X-Spike-Arrest-Remaining", strconv.Itoa(max(spikeLeft, 0)))
		h.Set("X-Spike-Arrest-Reset", strconv.FormatInt(spikeReset, 10))
	}
	var resetMs int64
	var msg string
	switch {
	case minuteFull:
		resetMs = minuteReset
		msg = fmt.Sprintf("Rate limit exceeded ! You reach the limit of %d requests per 1 minutes", l.perMinute)
	case spikeFull:
		resetMs = spikeReset
		msg = fmt.Sprintf("Spike limit exceeded ! You reach the limit of %d requests per 100 ms.", l.spike)
	default:
		return true
	}
	wait := time.Duration(resetMs-ms) * time.Millisecond
	h.Set("Retry-After", strconv.FormatInt(max(int64((wait+time.Second-1)/time.Second), 1), 10))
	gatewayError(w, http.StatusTooManyRequests, msg)
	return false
}

// simToken is an issued access token.
type simToken struct {
	acct    *account
	grant   string
	subject string // the contact IRI (contact grant) or club IRI (club grant)
	expires time.Time
	refresh string
}

// oauthError writes an OAuth2 error body.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, "application/json", map[string]string{"error": code, "error_description": desc})
}

// tokenEndpoint serves POST …/oauth/v2/token for account a (found by API key).
func (s *Simulator) tokenEndpoint(w http.ResponseWriter, r *http.Request, a *account) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "The request method must be POST when requesting an access token")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSimBody)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be read")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	grant := r.PostForm.Get("grant_type")
	stateOf(r).rec.Grant = grant
	if id != a.ClientID || secret != a.ClientSecret || id == "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "The client credentials are invalid")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var subject string
	switch grant {
	case GrantClientCredentials:
	case GrantContactCredentials:
		email := r.PostForm.Get("email")
		if email == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", `Missing parameter "email"`)
			return
		}
		c := a.contactByEmail(email)
		if c == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid contact credentials")
			return
		}
		subject = c.c.ID
	case GrantClubCredentials:
		club := r.PostForm.Get("clubId")
		if club == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", `Missing parameter "clubId"`)
			return
		}
		if _, ok := a.club(club); !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid club credentials")
			return
		}
		subject = club
	case "refresh_token":
		old := s.refresh[r.PostForm.Get("refresh_token")]
		if old == nil || old.acct != a {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		}
		delete(s.refresh, old.refresh)
		grant, subject = old.grant, old.subject
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid grant_type parameter or parameter missing")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type parameter or parameter missing")
		return
	}
	t := &simToken{acct: a, grant: grant, subject: subject, expires: s.now().Add(s.tokenTTL), refresh: randomToken()}
	access := randomToken()
	s.sweepTokens()
	s.tokens[access] = t
	s.refresh[t.refresh] = t
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"access_token":  access,
		"expires_in":    max(int64((s.tokenTTL+time.Second-1)/time.Second), 1),
		"token_type":    "bearer",
		"scope":         scopeOf(grant),
		"refresh_token": t.refresh,
	})
}

// contactByEmail is the contact a contact grant for email acts as
// (caller holds Simulator.mu). [inferred] E-mails are unique among the
// contacts that are neither temp nor archived, but temp and archived
// contacts may share one: the grant acts as the contact that counts for
// uniqueness (so the source of a migration, not its temp target), else as
// the first temp contact with the e-mail; an archived contact (the source
// of a validated transfer) can no longer be authenticated as.
func (a *account) contactByEmail(email string) *simContact {
	var temp *simContact
	for _, c := range a.byEmail[strings.ToLower(email)] {
		switch {
		case c.archived():
		case c.c.State != StateTemp:
			return c
		case temp == nil:
			temp = c
		}
	}
	return temp
}

func scopeOf(grant string) string {
	switch grant {
	case GrantContactCredentials:
		return "contact"
	case GrantClubCredentials:
		return "club"
	default:
		return "client"
	}
}

// sweepTokens drops expired tokens once there are many (caller holds s.mu).
func (s *Simulator) sweepTokens() {
	if len(s.tokens) < tokenSweepAbove {
		return
	}
	now := s.now()
	for k, t := range s.tokens {
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
	// Refresh tokens live as long as their access token here.
	for k, t := range s.refresh {
		if !now.Before(t.expires) {
			delete(s.refresh, k)
		}
	}
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// bearer authenticates r for account a: it writes the API firewall's 401
// and returns nil when the token is missing, unknown, of another account or
// expired.
func (s *Simulator) bearer(w http.ResponseWriter, r *http.Request, a *account) *simToken {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || tok == "" {
		oauthError(w, http.StatusUnauthorized, "access_denied", "OAuth2 authentication required")
		return nil
	}
	s.mu.Lock()
	t := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case t == nil || t.acct != a:
		oauthError(w, http.StatusUnauthorized, "invalid_grant", "The access token provided is invalid.")
		return nil
	case !s.now().Before(t.expires):
		oauthError(w, http.StatusUnauthorized, "invalid_grant", "The access token provided has expired.")
		return nil
	}
	stateOf(r).rec.Grant = t.grant
	return t
}

// writeJSON writes v with status and content type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"simulator: cannot encode the reply"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
