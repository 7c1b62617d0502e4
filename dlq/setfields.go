package dlq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SetFields sets fields of body, a JSON object, and returns it re-encoded
// compactly (keys sorted, numbers kept as written). Each of sets is
// "a.b.c=value": the value is used as JSON if it is a JSON value (a number,
// true, false, null, "a quoted string", {…} or […]), else as a string.
// Missing intermediate objects are created; a path that goes through
// something other than an object is an error that names it.
func SetFields(body []byte, sets []string) ([]byte, error) {
	root, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	for _, set := range sets {
		path, raw, ok := strings.Cut(set, "=")
		if !ok {
			return nil, fmt.Errorf("set %q: want field=value", set)
		}
		keys := strings.Split(path, ".")
		if slices.Contains(keys, "") {
			return nil, fmt.Errorf("set %q: bad field path %q", set, path)
		}
		value, err := parseValue(raw)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", path, err)
		}
		obj := root
		for i, k := range keys[:len(keys)-1] {
			next, present := obj[k]
			if !present || next == nil {
				m := map[string]any{}
				obj[k] = m
				obj = m
				continue
			}
			m, isObj := next.(map[string]any)
			if !isObj {
				return nil, fmt.Errorf("set %s: %s is %s, not an object", path, strings.Join(keys[:i+1], "."), kind(next))
			}
			obj = m
		}
		obj[keys[len(keys)-1]] = value
	}
	return encode(root)
}

// decodeObject reads a JSON object, keeping numbers as written.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("body is not JSON: data after the value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("body is %s, not a JSON object", kind(v))
	}
	return m, nil
}

// parseValue reads raw as a JSON value, or takes it as a string.
func parseValue(raw string) (any, error) {
	if !json.Valid([]byte(raw)) {
		return raw, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
