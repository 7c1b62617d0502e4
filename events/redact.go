package events

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/registrar-dev/registrar/secret"
)

// redactDepth bounds the nesting Redact walks; deeper bodies are redacted by
// the lenient scan instead.
const redactDepth = 512

// Redact returns body with the value of every secret key replaced by
// "[redacted]", for dead letters and logs. Secret keys are "password" and
// "code" (compared ignoring case, at any depth); on event subjects only
// "password", since events carry failure codes and never one-time codes.
//
// A body that is valid JSON and holds no secret key is returned as is; one
// that holds some is returned re-encoded compactly. A body that is not valid
// JSON is scanned for "key": value pairs with a secret key, which are
// replaced; everything else in it is kept.
func Redact(subject string, body []byte) []byte {
	r := redactor{events: strings.HasPrefix(subject, EventSubjectPrefix)}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out bytes.Buffer
	err := r.value(dec, &out, 0)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			err = nil
		} else if err == nil {
			err = io.ErrUnexpectedEOF // more than one value: not ours to parse
		}
	}
	if err != nil {
		r.n = 0
		return r.scan(body)
	}
	if r.n == 0 {
		return body
	}
	return out.Bytes()
}

type redactor struct {
	events bool
	n      int // values redacted
}

func (r *redactor) secret(key string) bool {
	return strings.EqualFold(key, "password") || (!r.events && strings.EqualFold(key, "code"))
}

// value copies one JSON value from dec to out, redacting secret members.
func (r *redactor) value(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return writeToken(out, tok)
	}
	if depth >= redactDepth {
		return errTooDeep
	}
	switch d {
	case '{':
		out.WriteByte('{')
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			if err := writeToken(out, key); err != nil {
				return err
			}
			out.WriteByte(':')
			if r.secret(key) {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				r.n++
				writeMarker(out)
				continue
			}
			if err := r.value(dec, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte('}')
	case '[':
		out.WriteByte('[')
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := r.value(dec, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte(']')
	}
	_, err = dec.Token() // the closing delimiter
	return eofIsUnexpected(err)
}

func writeToken(out *bytes.Buffer, tok any) error {
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	out.Write(b)
	return nil
}

func writeMarker(out *bytes.Buffer) { out.WriteString(`"` + secret.Marker + `"`) }

// scan redacts a body that is not valid JSON: wherever a quoted secret key is
// followed by a colon, the value after it (a string to its closing quote, or
// anything up to , } ] or white space) is replaced.
func (r *redactor) scan(body []byte) []byte {
	var out bytes.Buffer
	i := 0
	for i < len(body) {
		if body[i] != '"' {
			out.WriteByte(body[i])
			i++
			continue
		}
		end := stringEnd(body, i)
		out.Write(body[i:end])
		key := body[i:end]
		i = end
		var k string
		if json.Unmarshal(key, &k) != nil {
			k = string(bytes.Trim(key, `"`))
		}
		if !r.secret(k) {
			continue
		}
		j := skipSpace(body, i)
		if j >= len(body) || body[j] != ':' {
			continue
		}
		j = skipSpace(body, j+1)
		out.Write(body[i:j])
		switch {
		case j < len(body) && body[j] == '"':
			i = stringEnd(body, j)
		default:
			i = j
			for i < len(body) && !bytes.ContainsAny(body[i:i+1], ",}] \t\r\n") {
				i++
			}
		}
		writeMarker(&out)
		r.n++
	}
	if r.n == 0 {
		return body
	}
	return out.Bytes()
}

// stringEnd returns the index after the string literal starting at the
// quote at start (or len(b) if it does not end).
func stringEnd(b []byte, start int) int {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}
