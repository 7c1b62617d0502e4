package config

import (
	"errors"
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(minimalTenant))
	f.Add([]byte(goodTenant))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Add([]byte("tenants:\n  x: &x\n    <<: *x\n"))
	f.Add([]byte("processing: {inFlight: ${N}, ackWait: $${x}}\n"))
	vars := env(exampleEnv())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, vars)
		if err != nil {
			var ke *KeyError
			if c != nil || !errors.As(err, &ke) {
				t.Fatalf("config %v with error %v (%T)", c, err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed config does not validate: %v", err)
		}
		for name := range c.Tenants {
			for _, vendor := range []string{"", "resamania", "marta", "engage", "cloudsuite"} {
				_ = c.CheckTenant(name, vendor)
			}
		}
	})
}
