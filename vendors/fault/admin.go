package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxAdminBody bounds the admin request bodies.
const maxAdminBody = 64 << 10

// configJSON is Config on the wire: durations as strings, every field
// optional so that a PUT changes only what it names.
type configJSON struct {
	Latency       *duration `json:"latency,omitempty"`
	Jitter        *duration `json:"jitter,omitempty"`
	ErrorRate     *float64  `json:"errorRate,omitempty"`
	RateLimitRate *float64  `json:"rateLimitRate,omitempty"`
	RetryAfter    *duration `json:"retryAfter,omitempty"`
	TimeoutRate   *float64  `json:"timeoutRate,omitempty"`
	HangFor       *duration `json:"hangFor,omitempty"`
	Exclude       *[]string `json:"exclude,omitempty"`
}

// duration reads a Go duration string ("50ms", "1.5s") or a number of
// milliseconds, and writes a duration string.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("a duration is a string such as \"50ms\" or a number of milliseconds, got %s", b)
	}
	*d = duration(ms * float64(time.Millisecond))
	return nil
}

// MarshalJSON writes every field, durations as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	d := func(v time.Duration) *duration { x := duration(v); return &x }
	ex := c.Exclude
	if ex == nil {
		ex = []string{}
	}
	return json.Marshal(configJSON{
		Latency: d(c.Latency), Jitter: d(c.Jitter), ErrorRate: &c.ErrorRate, RateLimitRate: &c.RateLimitRate,
		RetryAfter: d(c.RetryAfter), TimeoutRate: &c.TimeoutRate, HangFor: d(c.HangFor), Exclude: &ex,
	})
}

// UnmarshalJSON reads the fields present and leaves the others as they are,
// so decoding onto the current Config applies a partial update. Durations
// are Go duration strings ("50ms") or numbers of milliseconds.
func (c *Config) UnmarshalJSON(b []byte) error {
	var w configJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	setD := func(dst *time.Duration, v *duration) {
		if v != nil {
			*dst = time.Duration(*v)
		}
	}
	setF := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	setD(&c.Latency, w.Latency)
	setD(&c.Jitter, w.Jitter)
	setF(&c.ErrorRate, w.ErrorRate)
	setF(&c.RateLimitRate, w.RateLimitRate)
	setD(&c.RetryAfter, w.RetryAfter)
	setF(&c.TimeoutRate, w.TimeoutRate)
	setD(&c.HangFor, w.HangFor)
	if w.Exclude != nil {
		c.Exclude = *w.Exclude
	}
	return nil
}

// failNextJSON is the body of a POST to the admin endpoint.
type failNextJSON struct {
	FailNext *int `json:"failNext"`
	Status   int  `json:"status"`
}

// ServeAdmin returns the injector's control endpoint, answering at whatever
// path it is mounted on:
//
//	GET            the current Config as JSON (plus "pendingFailures")
//	PUT or PATCH   a JSON Config; only the fields present change; 400 if invalid
//	POST           {"failNext": n, "status": s}: see FailNext
//	DELETE         back to the zero Config, pending FailNext cancelled
//
// Every successful call answers 200 with the resulting state, as for GET.
// The endpoint has no authentication: mount it only where the simulator's
// users may reach it, and never behind the injector itself.
func (i *Injector) ServeAdmin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPatch:
			body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
			if err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			// Held across decode and Set so that concurrent partial updates
			// do not lose each other's fields.
			i.mu.Lock()
			cfg := i.cfg
			cfg.Exclude = append([]string(nil), cfg.Exclude...)
			err = json.Unmarshal(body, &cfg)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				i.cfg = cfg.normalized()
			}
			i.mu.Unlock()
			if err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
		case http.MethodPost:
			var f failNextJSON
			dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
			dec.DisallowUnknownFields()
			err := dec.Decode(&f)
			if err == nil && f.FailNext == nil {
				err = errors.New(`"failNext" is required`)
			}
			if err == nil && f.Status != 0 && (f.Status < 200 || f.Status > 599) {
				err = fmt.Errorf("status %d is not a final HTTP status (200-599)", f.Status)
			}
			if err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			i.FailNext(*f.FailNext, f.Status)
		case http.MethodDelete:
			i.Set(Config{})
			i.FailNext(0, 0)
		default:
			w.Header().Set("Allow", "GET, PUT, PATCH, POST, DELETE")
			adminError(w, http.StatusMethodNotAllowed, errors.New("method not allowed"))
			return
		}
		i.mu.Lock()
		cfg, pending := i.cfg, i.failNext
		i.mu.Unlock()
		cb, err := json.Marshal(cfg)
		if err != nil {
			adminError(w, http.StatusInternalServerError, err)
			return
		}
		// Config marshals as one object: add pendingFailures to it.
		out := append(cb[:len(cb)-1], `,"pendingFailures":`+strconv.Itoa(pending)+"}\n"...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

func adminError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}
