package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/registrar-dev/registrar/secret"
)

// KeyError is one problem with one key of the configuration. Its message
// never holds a secret value.
type KeyError struct {
	// Key is the key's dotted path, e.g. "tenants.acme.marta.apiKey"; ""
	// for the file as a whole.
	Key     string
	Message string
}

// Error gives "key: message", or the message alone for the file as a whole.
func (e *KeyError) Error() string {
	if e.Key == "" {
		return e.Message
	}
	return e.Key + ": " + e.Message
}

// decode reads YAML data onto c: a walk of the node tree that expands
// environment variables in scalars and reports errors by key path, where
// yaml.v3's own decoding would report line numbers and Go type names.
func decode(data []byte, c *Config, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF { // an empty file: every default
			return nil
		}
		return &KeyError{Message: "invalid YAML: " + err.Error()}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		return &KeyError{Message: "must hold exactly one YAML document"}
	}
	d := decoder{lookupEnv: lookupEnv, merging: map[*yaml.Node]bool{}, budget: maxNodes}
	d.value(&doc, reflect.ValueOf(c).Elem(), "")
	return errors.Join(d.errs...)
}

type decoder struct {
	lookupEnv func(string) (string, bool)
	errs      []error
	merging   map[*yaml.Node]bool // the mappings being merged in, against cycles
	budget    int                 // nodes left to visit, against alias bombs
}

// maxNodes bounds the nodes a decode visits, counting each use of an alias
// or merge anew.
const maxNodes = 100_000

// spend takes one node from the budget and reports whether any is left.
func (d *decoder) spend() bool {
	d.budget--
	if d.budget == -1 {
		d.fail("", "uses aliases and merge keys too much (more than %d nodes)", maxNodes)
	}
	return d.budget >= 0
}

func (d *decoder) fail(key, format string, args ...any) {
	d.errs = append(d.errs, &KeyError{Key: key, Message: fmt.Sprintf(format, args...)})
}

// value decodes node n onto v; key is n's path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	if !d.spend() {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: keep the default
	}
	switch {
	case v.Type() == reflect.TypeFor[secret.String]() || v.Type() == reflect.TypeFor[time.Duration]():
		d.scalar(n, v, key)
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), key)
	case v.Kind() == reflect.Struct:
		d.mapping(n, key, func(k string, kn, vn *yaml.Node) {
			f, ok := fieldByKey(v, k)
			if !ok {
				d.fail(joinKey(key, k), "unknown key%s", suggest(v.Type(), k))
				return
			}
			d.value(vn, f, joinKey(key, k))
		})
	case v.Kind() == reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.mapping(n, key, func(k string, kn, vn *yaml.Node) {
			elem := reflect.New(v.Type().Elem()).Elem()
			if old := v.MapIndex(reflect.ValueOf(k)); old.IsValid() {
				elem.Set(old) // a merge key gave part of it
			}
			d.value(vn, elem, joinKey(key, k))
			v.SetMapIndex(reflect.ValueOf(k), elem)
		})
	default:
		d.scalar(n, v, key)
	}
}

// mapping calls fn for each key of mapping n: first the keys merged in with
// "<<", then the node's own keys, which override them.
func (d *decoder) mapping(n *yaml.Node, key string, fn func(k string, kn, vn *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.fail(key, "must be a mapping of keys to values, not %s", kindName(n))
		return
	}
	var merges []*yaml.Node
	seen := map[string]bool{}
	type pair struct{ k, v *yaml.Node }
	var own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			merges = append(merges, vn)
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			d.fail(key, "has a key that is %s, not a name", kindName(kn))
			continue
		}
		if seen[kn.Value] {
			d.fail(joinKey(key, kn.Value), "is given more than once")
			continue
		}
		seen[kn.Value] = true
		own = append(own, pair{kn, vn})
	}
	for _, m := range merges {
		m = resolveAlias(m)
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, s := range sources {
			s = resolveAlias(s)
			if d.merging[s] {
				d.fail(key, "merges a mapping into itself")
				continue
			}
			if !d.spend() {
				return
			}
			d.merging[s] = true
			d.mapping(s, key, fn)
			delete(d.merging, s)
		}
	}
	for _, p := range own {
		fn(p.k.Value, p.k, p.v)
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// scalar decodes a scalar node onto a string, secret, number, duration or
// boolean.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(key, "must be a single value, not %s", kindName(n))
		return
	}
	s, expanded, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.fail(key, "%s", err)
		return
	}
	// shown quotes the value in a message, unless it came from the
	// environment (it might be a secret put in the wrong key).
	shown := func() string {
		if expanded {
			return "the value from the environment"
		}
		return strconv.Quote(s)
	}
	switch {
	case v.Type() == reflect.TypeFor[secret.String]():
		v.Set(reflect.ValueOf(secret.New(s)))
	case v.Type() == reflect.TypeFor[time.Duration]():
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(key, "must be a duration such as 30s or 1m30s, not %s", shown())
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int:
		i, err := strconv.Atoi(s)
		if err != nil {
			d.fail(key, "must be an integer, not %s", shown())
			return
		}
		v.SetInt(int64(i))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.fail(key, "must be a number, not %s", shown())
			return
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.fail(key, "must be true or false, not %s", shown())
			return
		}
		v.SetBool(b)
	default: // a type this decoder was not written for: a bug, not the file's fault
		d.fail(key, "cannot be decoded into %s", v.Type())
	}
}

// expand replaces ${VAR} in s with lookupEnv's value and $${ with ${.
// expanded reports whether any variable was used.
func expand(s string, lookupEnv func(string) (string, bool)) (out string, expanded bool, err error) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, errors.New("has a ${ without its closing } (write $${ for a literal ${)")
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", false, fmt.Errorf("has an invalid environment variable name %q in ${…}", name)
			}
			val, ok := lookupEnv(name)
			if !ok {
				return "", false, fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			expanded = true
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), expanded, nil
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i, c := range []byte(s) {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// fieldByKey finds the field of struct v whose yaml tag is k.
func fieldByKey(v reflect.Value, k string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == k {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func yamlName(f reflect.StructField) string {
	return strings.Split(f.Tag.Get("yaml"), ",")[0]
}

// suggest names a key of t that equals k ignoring case, as a hint.
func suggest(t reflect.Type, k string) string {
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); strings.EqualFold(name, k) {
			return " (did you mean " + name + "?)"
		}
	}
	var names []string
	for i := range t.NumField() {
		names = append(names, yamlName(t.Field(i)))
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "empty"
	}
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
