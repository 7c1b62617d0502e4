package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// errTooDeep stops parsing a body that nests deeper than MaxDepth.
var errTooDeep = fmt.Errorf("nests objects and arrays deeper than %d levels", MaxDepth)

// parseObject parses body as exactly one JSON object into a tree of
// map[string]any, []any, string, json.Number, bool and nil. It returns what
// it read before an error too (the caller looks for a registrationId in it),
// and every problem as a FieldError: duplicate keys by their path, anything
// else on field "body".
func parseObject(body []byte) (map[string]any, []FieldError) {
	if !utf8.Valid(body) {
		return nil, []FieldError{{Field: fieldBody, Message: fmt.Sprintf("is not valid UTF-8 (byte offset %d)", invalidUTF8At(body))}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, []FieldError{{Field: fieldBody, Message: "is empty: want a JSON object"}}
	}
	if err != nil {
		return nil, []FieldError{{Field: fieldBody, Message: syntaxMessage(err)}}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, []FieldError{{Field: fieldBody, Message: "must be a JSON object"}}
	}
	p := parser{dec: dec}
	root := map[string]any{}
	if err := p.object(root, "", 1); err != nil {
		msg := syntaxMessage(err)
		if errors.Is(err, errTooDeep) {
			msg = err.Error()
		}
		return root, append(p.errs, FieldError{Field: fieldBody, Message: msg})
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		for end < int64(len(body)) && isJSONSpace(body[end]) {
			end++
		}
		p.errs = append(p.errs, FieldError{Field: fieldBody, Message: fmt.Sprintf("has data after the JSON object (byte offset %d)", end)})
	}
	return root, p.errs
}

type parser struct {
	dec  *json.Decoder
	errs []FieldError
}

// object reads the members of an object whose '{' was read, and its '}'.
func (p *parser) object(m map[string]any, path string, depth int) error {
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return eofIsUnexpected(err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder reports a syntax error first; be safe anyway
			return fmt.Errorf("object key is not a string")
		}
		field := joinPath(path, key)
		v, err := p.value(field, depth)
		if err != nil {
			return err
		}
		if _, dup := m[key]; dup {
			p.errs = append(p.errs, FieldError{Field: field, Message: "is given more than once"})
			continue
		}
		m[key] = v
	}
	_, err := p.dec.Token()
	return eofIsUnexpected(err)
}

// value reads one value inside a container at depth.
func (p *parser) value(path string, depth int) (any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, eofIsUnexpected(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth+1 > MaxDepth {
		return nil, errTooDeep
	}
	switch d {
	case '{':
		m := map[string]any{}
		return m, p.object(m, path, depth+1)
	case '[':
		a := []any{}
		for i := 0; p.dec.More(); i++ {
			v, err := p.value(path+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return a, err
			}
			a = append(a, v)
		}
		_, err := p.dec.Token()
		return a, eofIsUnexpected(err)
	}
	return nil, fmt.Errorf("unexpected %q", rune(d))
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// syntaxMessage describes a parse error for field "body".
func syntaxMessage(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("is not valid JSON: %s (byte offset %d)", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "is not valid JSON: it ends before the object is complete"
	default:
		return "is not valid JSON: " + err.Error()
	}
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
