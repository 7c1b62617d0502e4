package outbox

import (
	"encoding/json"
	"fmt"
)

// EncodeHeaders turns message headers into the JSON text stores keep.
func EncodeHeaders(h map[string]string) (string, error) {
	if len(h) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DecodeHeaders reads headers stored by EncodeHeaders; none gives a nil map.
func DecodeHeaders(s string) (map[string]string, error) {
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}
