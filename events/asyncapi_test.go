package events

// These tests keep ../asyncapi.yaml, the contract as an AsyncAPI document,
// in step with the Go types of this package: every subject, every field,
// every required field and every enumeration. They read the document with
// gopkg.in/yaml.v3 and check JSON values against its schemas with a small
// validator (the JSON Schema keywords the document uses, nothing more).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/registrar-dev/registrar/secret"
)

const asyncAPIPath = "../asyncapi.yaml"

// asyncAPIDoc is the parsed document: maps, lists and scalars as yaml.v3
// decodes them into any.
type asyncAPIDoc struct {
	root map[string]any
}

func loadAsyncAPI(t *testing.T) *asyncAPIDoc {
	t.Helper()
	b, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", asyncAPIPath, err)
	}
	return &asyncAPIDoc{root: root}
}

// pointer resolves a local reference such as "#/components/schemas/Cancel".
func (d *asyncAPIDoc) pointer(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("reference %q: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("reference %q: bad index %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("reference %q: %q is inside a scalar", ref, tok)
		}
	}
	return cur, nil
}

// deref follows $ref until it reaches an object without one.
func (d *asyncAPIDoc) deref(t *testing.T, v any) map[string]any {
	t.Helper()
	for range 32 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("want an object, got %T (%v)", v, v)
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m
		}
		next, err := d.pointer(ref)
		if err != nil {
			t.Fatal(err)
		}
		v = next
	}
	t.Fatal("$ref chain too long")
	return nil
}

// effective is a property's schema for the shape checks: its $ref target,
// or the one schema of an allOf that only adds a description.
func (d *asyncAPIDoc) effective(t *testing.T, v any) map[string]any {
	t.Helper()
	m := d.deref(t, v)
	if _, typed := m["type"]; !typed {
		if all, ok := m["allOf"].([]any); ok && len(all) == 1 {
			return d.effective(t, all[0])
		}
	}
	return m
}

func mapAt(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	cur := m
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			t.Fatalf("%s: no object %q", strings.Join(keys, "."), k)
		}
		cur = next
	}
	return cur
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// asyncAPIChannel is one channel with its single message, resolved.
type asyncAPIChannel struct {
	id, address string
	message     map[string]any // the message object ($ref resolved)
	payloadRef  string         // the payload's $ref, "" if inline
	payload     map[string]any // the payload schema ($ref resolved)
}

func (d *asyncAPIDoc) channels(t *testing.T) []asyncAPIChannel {
	t.Helper()
	var out []asyncAPIChannel
	chans := mapAt(t, d.root, "channels")
	for _, id := range sortedKeys(chans) {
		ch, ok := chans[id].(map[string]any)
		if !ok {
			t.Fatalf("channel %s is not an object", id)
		}
		addr, _ := ch["address"].(string)
		msgs, _ := ch["messages"].(map[string]any)
		if len(msgs) != 1 {
			t.Errorf("channel %s (%s) has %d messages, want 1", id, addr, len(msgs))
			continue
		}
		var msg any
		for _, m := range msgs {
			msg = m
		}
		c := asyncAPIChannel{id: id, address: addr, message: d.deref(t, msg)}
		payload, ok := c.message["payload"].(map[string]any)
		if !ok {
			t.Errorf("channel %s: message has no payload", id)
			continue
		}
		c.payloadRef, _ = payload["$ref"].(string)
		c.payload = d.deref(t, payload)
		out = append(out, c)
	}
	return out
}

// channelFor returns the channel whose address is subject.
func (d *asyncAPIDoc) channelFor(t *testing.T, subject string) asyncAPIChannel {
	t.Helper()
	for _, c := range d.channels(t) {
		if c.address == subject {
			return c
		}
	}
	t.Fatalf("no channel for %s", subject)
	return asyncAPIChannel{}
}

// ---------------------------------------------------------------- Go types

// jsonField is one JSON field of a Go struct, as encoding/json sees it.
type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

// jsonFields lists the JSON fields of struct type t, embedded structs
// (Envelope, Start, Steer) flattened.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type})
	}
	return out
}

var (
	timeType   = reflect.TypeOf(time.Time{})
	secretType = reflect.TypeOf(secret.String{})
	rawType    = reflect.TypeOf(json.RawMessage{})
)

// jsonKind is the JSON Schema type a Go type marshals as; "" for any.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, secretType:
		return "string"
	case rawType:
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return ""
}

// nestedStruct returns the struct a field holds (directly, by pointer or as
// the elements of a slice) when its fields should be compared too.
func nestedStruct(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType {
		return nil
	}
	if t.Kind() == reflect.Slice {
		t = t.Elem()
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	if t.Kind() != reflect.Struct || t == timeType || t == secretType {
		return nil
	}
	return t
}

func schemaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		return stringList(v)
	}
	return nil
}

// compareShape checks schema against Go struct type typ: the same property
// names, matching JSON types, secrets marked writeOnly, and, nested structs
// compared in turn. For events (output), required must be exactly the
// fields without omitempty.
func (d *asyncAPIDoc) compareShape(t *testing.T, where string, schema map[string]any, typ reflect.Type, output bool) {
	t.Helper()
	props, _ := schema["properties"].(map[string]any)
	fields := jsonFields(typ)
	byName := map[string]jsonField{}
	for _, f := range fields {
		byName[f.name] = f
		if _, ok := props[f.name]; !ok {
			t.Errorf("%s: the schema lacks %s's field %q", where, typ.Name(), f.name)
		}
	}
	for _, name := range sortedKeys(props) {
		f, ok := byName[name]
		if !ok {
			t.Errorf("%s: property %q is not a JSON field of %s", where, name, typ.Name())
			continue
		}
		ps := d.effective(t, props[name])
		at := where + "." + name
		if want := jsonKind(f.typ); want != "" {
			if got := schemaTypes(ps); len(got) > 0 && !slices.Contains(got, want) {
				t.Errorf("%s: schema type %v, but the Go field (%s) marshals as %s", at, got, f.typ, want)
			}
		}
		writeOnly, _ := ps["writeOnly"].(bool)
		if isSecret := f.typ == secretType; isSecret != writeOnly {
			t.Errorf("%s: writeOnly = %v, but the Go field is secret: %v", at, writeOnly, isSecret)
		} else if isSecret {
			if desc, _ := ps["description"].(string); !strings.Contains(strings.Join(strings.Fields(desc), " "), "never appears in an event") {
				t.Errorf("%s: a secret's description should say it never appears in an event", at)
			}
		}
		if st := nestedStruct(f.typ); st != nil {
			inner := ps
			if jsonKind(f.typ) == "array" {
				items, ok := ps["items"]
				if !ok {
					t.Errorf("%s: an array without items", at)
					continue
				}
				inner = d.effective(t, items)
			}
			d.compareShape(t, at, inner, st, output)
		}
	}
	required := stringList(schema["required"])
	for _, r := range required {
		if _, ok := props[r]; !ok {
			t.Errorf("%s: required %q is not a property", where, r)
		}
	}
	if output {
		var want []string
		for _, f := range fields {
			if !f.omitempty {
				want = append(want, f.name)
			}
		}
		sort.Strings(want)
		got := slices.Sorted(slices.Values(required))
		if !slices.Equal(got, want) {
			t.Errorf("%s: required %q, but the fields of %s without omitempty are %q", where, got, typ.Name(), want)
		}
	}
}

// ---------------------------------------------------------------- the tests

func TestAsyncAPIDocument(t *testing.T) {
	d := loadAsyncAPI(t)
	if v := d.root["asyncapi"]; v != "3.0.0" {
		t.Errorf("asyncapi = %v, want 3.0.0", v)
	}
	info := mapAt(t, d.root, "info")
	if info["title"] != "registrar" || info["version"] != "1.0.0" {
		t.Errorf("info title %v, version %v", info["title"], info["version"])
	}
	if MaxBodySize != 64<<10 {
		t.Fatalf("MaxBodySize = %d: update the document's 64 KiB", MaxBodySize)
	}
	if desc, _ := info["description"].(string); !strings.Contains(desc, "at most 64 KiB") {
		t.Error("info.description does not give the 64 KiB body limit")
	}
	if d.root["defaultContentType"] != "application/json" {
		t.Errorf("defaultContentType = %v", d.root["defaultContentType"])
	}
	servers := mapAt(t, d.root, "servers")
	nats := 0
	for _, s := range servers {
		if m, ok := s.(map[string]any); ok && m["protocol"] == "nats" {
			nats++
		}
	}
	if nats == 0 {
		t.Error("no server with protocol nats")
	}
}

// TestAsyncAPIChannels checks that the channels are exactly the subjects of
// the package: one per command type, one per event type and the dead
// letters, each with the operation of the right direction.
func TestAsyncAPIChannels(t *testing.T) {
	d := loadAsyncAPI(t)
	commands, evts := map[string]string{}, map[string]string{}
	deadLetters := 0
	kind := map[string]string{} // channel id -> "command", "event", "dlq"
	for _, c := range d.channels(t) {
		switch {
		case strings.HasPrefix(c.address, CommandSubjectPrefix):
			typ := strings.TrimPrefix(c.address, CommandSubjectPrefix)
			if newCommand(typ) == nil {
				t.Errorf("channel %s: %s is not a command type the package knows", c.id, typ)
			}
			if prev, dup := commands[typ]; dup {
				t.Errorf("channels %s and %s both carry %s", prev, c.id, typ)
			}
			commands[typ] = c.id
			kind[c.id] = "command"
			h, ok := c.message["headers"]
			if !ok {
				t.Errorf("channel %s: the message documents no headers", c.id)
				continue
			}
			if props, _ := d.deref(t, h)["properties"].(map[string]any); props["Nats-Msg-Id"] == nil {
				t.Errorf("channel %s: the headers do not document Nats-Msg-Id", c.id)
			}
		case strings.HasPrefix(c.address, EventSubjectPrefix):
			typ := strings.TrimPrefix(c.address, EventSubjectPrefix)
			if _, ok := NewEvent(typ); !ok {
				t.Errorf("channel %s: %s is not an event type the package knows", c.id, typ)
			}
			if prev, dup := evts[typ]; dup {
				t.Errorf("channels %s and %s both carry %s", prev, c.id, typ)
			}
			evts[typ] = c.id
			kind[c.id] = "event"
			h, ok := c.message["headers"]
			if !ok {
				t.Errorf("channel %s: the message documents no headers", c.id)
				continue
			}
			if !slices.Contains(stringList(d.deref(t, h)["required"]), "Nats-Msg-Id") {
				t.Errorf("channel %s: the headers do not require Nats-Msg-Id", c.id)
			}
		case c.address == DeadLetterSubjectPrefix+"{handler}":
			deadLetters++
			kind[c.id] = "dlq"
			ch := mapAt(t, d.root, "channels", c.id)
			if _, ok := ch["parameters"].(map[string]any)["handler"]; !ok {
				t.Errorf("channel %s: no parameter handler", c.id)
			}
		default:
			t.Errorf("channel %s: address %q is not a subject of the contract", c.id, c.address)
		}
	}
	for _, typ := range CommandTypes() {
		if _, ok := commands[typ]; !ok {
			t.Errorf("no channel %s%s", CommandSubjectPrefix, typ)
		}
	}
	for _, typ := range EventTypes() {
		if _, ok := evts[typ]; !ok {
			t.Errorf("no channel %s%s", EventSubjectPrefix, typ)
		}
	}
	if deadLetters != 1 {
		t.Errorf("%d channels %s{handler}, want 1", deadLetters, DeadLetterSubjectPrefix)
	}

	// Operations: the service receives commands and sends events and dead
	// letters, one operation per channel.
	ops := mapAt(t, d.root, "operations")
	opsOf := map[string]int{}
	for _, id := range sortedKeys(ops) {
		op, _ := ops[id].(map[string]any)
		chRef, _ := op["channel"].(map[string]any)["$ref"].(string)
		chID, ok := strings.CutPrefix(chRef, "#/channels/")
		if !ok || kind[chID] == "" {
			t.Errorf("operation %s: channel %q is not a channel of the document", id, chRef)
			continue
		}
		opsOf[chID]++
		want := "send"
		if kind[chID] == "command" {
			want = "receive"
		}
		if op["action"] != want {
			t.Errorf("operation %s on %s: action %v, want %s", id, chID, op["action"], want)
		}
		msgs, _ := op["messages"].([]any)
		if len(msgs) == 0 {
			t.Errorf("operation %s: no messages", id)
		}
		for _, m := range msgs {
			ref, _ := m.(map[string]any)["$ref"].(string)
			if !strings.HasPrefix(ref, chRef+"/messages/") {
				t.Errorf("operation %s: message %q is not one of its channel's", id, ref)
			} else if _, err := d.pointer(ref); err != nil {
				t.Errorf("operation %s: %v", id, err)
			}
		}
	}
	for _, id := range sortedKeys(kind) {
		if opsOf[id] != 1 {
			t.Errorf("channel %s has %d operations, want 1", id, opsOf[id])
		}
	}
}

// commandSchema returns the payload schema of command type ct.
func (d *asyncAPIDoc) commandSchema(t *testing.T, ct string) map[string]any {
	t.Helper()
	return d.channelFor(t, CommandSubject(ct)).payload
}

func TestAsyncAPICommandSchemasMatchGoTypes(t *testing.T) {
	d := loadAsyncAPI(t)
	for _, ct := range CommandTypes() {
		t.Run(ct, func(t *testing.T) {
			typ := reflect.TypeOf(newCommand(ct)).Elem()
			d.compareShape(t, ct, d.commandSchema(t, ct), typ, false)
		})
	}
}

// TestAsyncAPICommandRequiredFields checks the schemas' required lists
// against the decoder: removing a required field from a command's example
// is an error naming that field; removing any other field is no error.
func TestAsyncAPICommandRequiredFields(t *testing.T) {
	d := loadAsyncAPI(t)
	for _, ct := range CommandTypes() {
		t.Run(ct, func(t *testing.T) {
			body := jsonValue(t, example(t, ct)).(map[string]any)
			if _, err := DecodeCommand(CommandSubject(ct), mustJSON(t, body), nil); err != nil {
				t.Fatalf("the example does not decode: %v", err)
			}
			d.checkRequired(t, ct, body, nil, d.commandSchema(t, ct))
		})
	}
}

func (d *asyncAPIDoc) checkRequired(t *testing.T, ct string, root map[string]any, path []string, schema map[string]any) {
	t.Helper()
	obj := root
	for _, k := range path {
		obj = obj[k].(map[string]any)
	}
	props, _ := schema["properties"].(map[string]any)
	required := stringList(schema["required"])
	for _, r := range required {
		if _, ok := props[r]; !ok {
			t.Errorf("required %q of %s is not a property", r, strings.Join(path, "."))
		}
	}
	for _, name := range sortedKeys(props) {
		field := strings.Join(append(slices.Clone(path), name), ".")
		v, present := obj[name]
		if !present {
			if slices.Contains(required, name) {
				t.Errorf("%s is required by the schema, yet the example (which decodes) lacks it", field)
			}
			continue
		}
		without := jsonValue(t, mustJSON(t, root)).(map[string]any)
		o := without
		for _, k := range path {
			o = o[k].(map[string]any)
		}
		delete(o, name)
		_, err := DecodeCommand(CommandSubject(ct), mustJSON(t, without), nil)
		if slices.Contains(required, name) {
			var invalid *InvalidCommandError
			if !errors.As(err, &invalid) {
				t.Errorf("without required %s: error %v, want an *InvalidCommandError", field, err)
			} else if !slices.ContainsFunc(invalid.Errors, func(fe FieldError) bool {
				return fe.Field == field && strings.Contains(fe.Message, "required")
			}) {
				t.Errorf("without required %s: errors %v do not say it is required", field, invalid.Errors)
			}
		} else if err != nil {
			t.Errorf("without %s, which the schema does not require: %v", field, err)
		}
		if _, isObj := v.(map[string]any); isObj {
			if inner := d.effective(t, props[name]); inner["properties"] != nil {
				d.checkRequired(t, ct, root, append(slices.Clone(path), name), inner)
			}
		}
	}
}

func TestAsyncAPIEventSchemasMatchGoTypes(t *testing.T) {
	d := loadAsyncAPI(t)
	for _, et := range EventTypes() {
		t.Run(et, func(t *testing.T) {
			e, _ := NewEvent(et)
			schema := d.channelFor(t, EventSubjectPrefix+et).payload
			d.compareShape(t, et, schema, reflect.TypeOf(e).Elem(), true)
			props, _ := schema["properties"].(map[string]any)
			if typeProp, ok := props["type"]; !ok || d.effective(t, typeProp)["const"] != et {
				t.Errorf("property type: want const %q", et)
			}
		})
	}
	// completed's result is one of the vendors' result types.
	completed := d.channelFor(t, EventSubjectPrefix+EvtCompleted).payload
	result := d.deref(t, completed["properties"].(map[string]any)["result"])
	byName := map[string]map[string]any{}
	for _, alt := range result["oneOf"].([]any) {
		ref, _ := alt.(map[string]any)["$ref"].(string)
		byName[ref[strings.LastIndexByte(ref, '/')+1:]] = d.deref(t, alt)
	}
	vendors := []string{VendorResamania, VendorMarta, VendorEngage, VendorCloudSuite}
	for _, v := range vendors {
		r, ok := ResultFor(v + ".x")
		if !ok {
			t.Errorf("no result type for %s", v)
			continue
		}
		typ := reflect.TypeOf(r).Elem()
		s, ok := byName[typ.Name()]
		if !ok {
			t.Errorf("completed.result: no schema %s among %q", typ.Name(), sortedKeys(byName))
			continue
		}
		d.compareShape(t, "completed.result."+typ.Name(), s, typ, true)
	}
	if len(byName) != len(vendors) {
		t.Errorf("completed.result has %d alternatives, want %d", len(byName), len(vendors))
	}
}

func TestAsyncAPIEnums(t *testing.T) {
	d := loadAsyncAPI(t)
	schemas := mapAt(t, d.root, "components", "schemas")
	strs := func(s ...string) []any {
		out := make([]any, len(s))
		for i, x := range s {
			out[i] = x
		}
		return out
	}
	for _, c := range []struct {
		schema, property string
		want             []any
	}{
		{"ResamaniaRegister", "onProspectElsewhere", strs(ProspectTransfer, ProspectMigrate, ProspectReject)},
		{"MartaSignup", "deviceType", []any{DeviceBrowser, DeviceAndroid, DeviceIOS}},
		{"MartaProfile", "gender", strs("M", "F", "N")},
		{"EngageIdentifier", "type", strs(IdentifierEmail, IdentifierMobile, IdentifierAppAlias, IdentifierExternal, IdentifierID)},
		{"ResamaniaContactFound", "scope", strs(ScopeClub, ScopeNetwork)},
		{"MartaCustomerChecked", "branch", strs(BranchNew, BranchHasCard, BranchRegistered)},
		{"MartaResult", "branch", strs(BranchNew, BranchHasCard)},
		{"OTPRequested", "channel", strs(ChannelSMS, ChannelEmail)},
		{"ErrorInfo", "code", strs(FailureCodes()...)},
		{"Rejected", "command", strs(CommandTypes()...)},
	} {
		s, ok := schemas[c.schema]
		if !ok {
			t.Errorf("no schema %s", c.schema)
			continue
		}
		p := d.effective(t, d.deref(t, s)["properties"].(map[string]any)[c.property])
		got, _ := p["enum"].([]any)
		if !slices.Equal(canonicalSet(t, got), canonicalSet(t, c.want)) {
			t.Errorf("%s.%s: enum %v, want %v", c.schema, c.property, got, c.want)
		}
	}
}

func canonicalSet(t *testing.T, vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(mustJSON(t, v))
	}
	sort.Strings(out)
	return out
}

// TestAsyncAPIExamples validates the command examples of testdata/, the
// document's own message examples and an event of every type (as the Go
// types marshal it) against the schemas.
func TestAsyncAPIExamples(t *testing.T) {
	d := loadAsyncAPI(t)
	for _, ct := range CommandTypes() {
		for _, e := range d.validate(d.commandSchema(t, ct), jsonValue(t, example(t, ct))) {
			t.Errorf("testdata/%s.json: %s", ct, e)
		}
	}
	for _, c := range d.channels(t) {
		examples, _ := c.message["examples"].([]any)
		for i, ex := range examples {
			exm, _ := ex.(map[string]any)
			where := fmt.Sprintf("channel %s, example %d", c.id, i)
			if h, ok := exm["headers"]; ok {
				for _, e := range d.validate(c.message["headers"], jsonValue(t, mustJSON(t, h))) {
					t.Errorf("%s: headers: %s", where, e)
				}
			}
			p, ok := exm["payload"]
			if !ok {
				continue
			}
			body := mustJSON(t, p)
			for _, e := range d.validate(c.payload, jsonValue(t, body)) {
				t.Errorf("%s: %s", where, e)
			}
			switch {
			case strings.HasPrefix(c.address, CommandSubjectPrefix):
				if _, err := DecodeCommand(c.address, body, nil); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			case strings.HasPrefix(c.address, EventSubjectPrefix):
				e, err := DecodeEvent(body)
				if err != nil {
					t.Errorf("%s: %v", where, err)
				} else if Subject(e) != c.address {
					t.Errorf("%s: a %s event on %s", where, e.EventType(), c.address)
				}
			}
		}
	}

	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	evts := append(sampleEvents(t),
		&Completed{Result: MartaResult{CustomerID: "9876", Username: "+393471234567", Card: "4000123", Branch: BranchHasCard}},
		&Completed{Result: EngageResult{ContactID: 42, Created: true}},
		&Completed{Result: CloudSuiteResult{Origin: "SOMEORIGIN", UserKey: "0f8fad5b-d9cb-469f-a165-70867728950e", CustomerKey: "CUST-1001"}},
	)
	for i, e := range evts {
		Stamp(e, "0b6f3b5e-4d4c-4f0e-9a6e-3f2b1c0d9e8f", "web:2026-11-25:0001", "resamania.register", at)
		if c, ok := e.(*Completed); ok {
			// The flow names the result's vendor.
			switch c.Result.(type) {
			case MartaResult:
				c.Flow = CmdMartaSignup
			case EngageResult:
				c.Flow = CmdEngageUpsert
			case CloudSuiteResult:
				c.Flow = "cloudsuite.registration"
			}
		}
		checkEventAgainstSchema(t, d, fmt.Sprintf("event %d (%s)", i, e.EventType()), e)
	}
	// A rejected command whose subject and body could not be read.
	rejected := NewRejected(&InvalidCommandError{Errors: []FieldError{{Field: "subject", Message: "is not a command subject"}}})
	Stamp(rejected, "0b6f3b5e-4d4c-4f0e-9a6e-3f2b1c0d9e8f", "", "", at)
	checkEventAgainstSchema(t, d, "rejected without id", rejected)
}

func checkEventAgainstSchema(t *testing.T, d *asyncAPIDoc, where string, e Event) {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range d.validate(d.channelFor(t, Subject(e)).payload, jsonValue(t, body)) {
		t.Errorf("%s: %s\n%s", where, msg, body)
	}
}

// TestAsyncAPISchemasAgreeWithDecoder changes one field of a command's
// example at a time and checks that the schema accepts the result exactly
// when DecodeCommand does: patterns, lengths, formats and enumerations.
func TestAsyncAPISchemasAgreeWithDecoder(t *testing.T) {
	d := loadAsyncAPI(t)
	type change = map[string]any
	remove := struct{}{}
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		cmd     string
		changes []change
	}{
		{CmdOTPResend, []change{
			{"registrationId": "a"}, {"registrationId": "A.b_c:d-e9"}, {"registrationId": long(128)},
			{"registrationId": long(129)}, {"registrationId": "a b"}, {"registrationId": "é"}, {"registrationId": "a/b"},
			{"registrationId": ""}, {"registrationId": 12},
		}},
		{CmdResamaniaRegister, []change{
			{"tenant": long(128)}, {"tenant": long(129)}, {"tenant": "ac\u0001me"}, {"tenant": "ac\u0085me"}, {"tenant": ""},
			{"clubId": "/demoapi/clubs/1"}, {"clubId": "/demoapi/clubs/x"}, {"clubId": "demoapi/clubs/1"},
			{"clubId": "/demoapi/contacts/1"}, {"clubId": "/demoapi/clubs/1/"},
			{"networkNodeId": "/demoapi/a/b_c/7"}, {"networkNodeId": "/demoapi/Nodes/7"}, {"networkNodeId": "/demoapi/7"},
			{"saleId": "123"}, {"saleId": "x1"}, {"saleId": strings.Repeat("1", 21)}, {"saleId": 33},
			{"onProspectElsewhere": "migrate"}, {"onProspectElsewhere": "reject"}, {"onProspectElsewhere": "Transfer"},
			{"contact.email": "a@b.co"}, {"contact.email": "a@b"}, {"contact.email": "a@-b.co"}, {"contact.email": "a b@c.de"},
			{"contact.email": "jane@exämple.com"}, {"contact.givenName": long(256)}, {"contact.givenName": long(257)},
			{"contact.birthDate": "1990-02-28"}, {"contact.birthDate": "1990-02-30"}, {"contact.birthDate": "1990-2-3"},
			{"contact.gender": long(32)}, {"contact.gender": long(33)},
			{"contact.mobile": "+33612345678"}, {"contact.mobile": "0612345678"}, {"contact.mobile": "+0612345678"},
			{"contact.mobile": "+1234567"}, {"contact.mobile": "+123456"},
			{"contact.address.postalCode": long(32)}, {"contact.address.postalCode": long(33)},
			{"contact.address": "1 The Street"}, {"contact": remove, "clubId": "/demoapi/clubs/9"},
			{"contact.sourceId": "/demoapi/contact_sources/12"}, {"contact.sourceId": "/demoapi/sources/x"},
		}},
		{CmdResamaniaTransfer, []change{
			{"contactId": "/demoapi/contacts/5"}, {"contactId": "/demoapi/clubs/5"},
			{"destinationNetworkNodeId": "/demoapi/network_nodes"},
		}},
		{CmdMartaSignup, []change{
			{"deviceType": 3}, {"deviceType": 4}, {"deviceType": 0}, {"deviceType": "1"}, {"deviceType": 1.5},
			{"campaignId": "0012"}, {"campaignId": "12a"}, {"campaignId": -1}, {"campaignId": 1.5},
			{"campaignId": json.Number("1234567890123456789")}, {"categoryId": strings.Repeat("9", 18)}, {"categoryId": strings.Repeat("9", 19)},
			{"username": "+393471234567"}, {"username": "jane"}, {"username": "393471234567"},
			{"card": "AB-12_3.4"}, {"card": "AB 12"}, {"card": long(64)}, {"card": long(65)},
			{"password": strings.Repeat("é", 128)}, {"password": strings.Repeat("é", 129)},
			{"profile.gender": "N"}, {"profile.gender": "X"}, {"profile.birthdate": "22/04/1992"},
			{"profile.city": map[string]any{"a": 1}}, {"profile.city": 12}, {"profile.city": true}, {"profile.city": long(257)},
			{"profile.consents.usedbyothers": "yes"}, {"profile.consents.other": true},
			{"profile": map[string]any{}}, {"profile": "none"},
		}},
		{CmdEngageUpsert, []change{
			{"identifier.type": "email"}, {"identifier.type": "MOBILE", "identifier.value": "+393471234567"},
			{"identifier.type": "MOBILE"}, {"identifier.type": "ID", "identifier.value": "12345"},
			{"identifier.type": "ID", "identifier.value": "12a"}, {"identifier.type": "ID", "identifier.value": strings.Repeat("1", 20)},
			{"identifier.type": "EXTERNAL", "identifier.value": long(256)}, {"identifier.type": "APP_ALIAS", "identifier.value": long(257)},
			{"identifier.value": "nope"},
			{"emailAddress": "nope"}, {"mobileNumber": "12"},
			{"attributes.City": long(4096)}, {"attributes.City": long(4097)}, {"attributes.City": "line\nbreak\tand tab"},
			{"attributes.City": "bell\u0007"}, {"attributes.City": 5}, {"attributes": []any{"x"}},
		}},
		{CmdCloudSuiteActivate, []change{
			{"userKey": "0F8FAD5B-D9CB-469F-A165-70867728950E"}, {"userKey": "0f8fad5b"}, {"userKey": "0f8fad5bd9cb469fa16570867728950e"},
			{"customerKey": "a/b"}, {"customerKey": "a b"}, {"customerKey": "a%20"}, {"customerKey": long(128)}, {"customerKey": long(129)},
			{"customer": "x"}, {"customer": map[string]any{}},
		}},
		{CmdOTPSubmit, []change{
			{"code": "1234"}, {"code": "12345678"}, {"code": "123"}, {"code": "123456789"}, {"code": "12a4"}, {"code": 1234},
		}},
		{CmdCancel, []change{
			{"reason": "a\tb\r\nc"}, {"reason": "a\u0000b"}, {"reason": long(512)}, {"reason": long(513)},
		}},
	}
	for _, c := range cases {
		schema := d.commandSchema(t, c.cmd)
		for _, ch := range c.changes {
			body := jsonValue(t, example(t, c.cmd)).(map[string]any)
			for _, path := range sortedKeys(ch) {
				keys := strings.Split(path, ".")
				obj := body
				for _, k := range keys[:len(keys)-1] {
					obj = obj[k].(map[string]any)
				}
				if ch[path] == remove {
					delete(obj, keys[len(keys)-1])
				} else {
					obj[keys[len(keys)-1]] = ch[path]
				}
			}
			b := mustJSON(t, body)
			_, err := DecodeCommand(CommandSubject(c.cmd), b, nil)
			schemaErrs := d.validate(schema, jsonValue(t, b))
			if (err == nil) != (len(schemaErrs) == 0) {
				t.Errorf("%s with %v: decoder error %v, schema errors %q", c.cmd, ch, err, schemaErrs)
			}
		}
	}
}

// TestAsyncAPIHeaders checks the documented headers against handlers'
// source: every header deadLetterMessage sets is a dead letter header, and
// the rejected event's header is handlers.HeaderCommandMsgID. (This package
// cannot import handlers, which imports it.)
func TestAsyncAPIHeaders(t *testing.T) {
	d := loadAsyncAPI(t)
	f, err := goparser.ParseFile(token.NewFileSet(), "../handlers/runtime.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var setByDeadLetter []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
		if fd, ok := n.(*ast.FuncDecl); ok && fd.Name.Name == "deadLetterMessage" {
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				as, ok := n.(*ast.AssignStmt)
				if !ok || len(as.Lhs) != 1 {
					return true
				}
				if ix, ok := as.Lhs[0].(*ast.IndexExpr); ok {
					if x, ok := ix.X.(*ast.Ident); ok && x.Name == "headers" {
						// headers[k] = v copies the original headers; the
						// dead letter's own are the Header… constants.
						if k, ok := ix.Index.(*ast.Ident); ok && strings.HasPrefix(k.Name, "Header") {
							setByDeadLetter = append(setByDeadLetter, k.Name)
						}
					}
				}
				return true
			})
		}
		return true
	})
	var want []string
	for _, name := range setByDeadLetter {
		v, ok := consts[name]
		if !ok {
			t.Fatalf("handlers/runtime.go: no string constant %s", name)
		}
		want = append(want, v)
	}
	if len(want) < 10 {
		t.Fatalf("found only %d headers set by deadLetterMessage in handlers/runtime.go: %q", len(want), want)
	}
	sort.Strings(want)

	dlq := d.channelFor(t, DeadLetterSubjectPrefix+"{handler}")
	headers := d.deref(t, dlq.message["headers"])
	props := headers["properties"].(map[string]any)
	if got := sortedKeys(props); !slices.Equal(got, want) {
		t.Errorf("dead letter headers %q, handlers sets %q", got, want)
	}
	var codes []any
	for _, name := range sortedKeys(consts) {
		if strings.HasPrefix(name, "DLQ") {
			codes = append(codes, consts[name])
		}
	}
	code := d.deref(t, props[consts["HeaderErrorCode"]])
	if got, _ := code["enum"].([]any); !slices.Equal(canonicalSet(t, got), canonicalSet(t, codes)) {
		t.Errorf("%s: enum %v, handlers' DLQ codes %v", consts["HeaderErrorCode"], got, codes)
	}

	rejected := d.channelFor(t, EventSubjectPrefix+EvtRejected)
	rh := d.deref(t, rejected.message["headers"])
	name := consts["HeaderCommandMsgID"]
	if _, ok := rh["properties"].(map[string]any)[name]; name == "" || !ok {
		t.Errorf("the rejected event's headers do not document %q", name)
	}
	if !slices.Contains(stringList(rh["required"]), name) {
		t.Errorf("the rejected event's headers do not require %q", name)
	}
}

// ---------------------------------------------------------------- JSON helpers

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonValue decodes b as the validator wants it: numbers as json.Number.
func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

// ---------------------------------------------------------------- validator

var (
	schemaRegexps sync.Map // pattern -> *regexp.Regexp
	uuidPattern   = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
)

// validate checks v (decoded by jsonValue) against schema and returns every
// problem found. It knows the keywords the document uses: $ref, type, enum,
// const, string lengths, pattern, format (date, date-time, uuid), minimum,
// maximum, properties, required, additionalProperties, propertyNames,
// maxProperties, items, minItems, allOf, anyOf, oneOf and if/then/else.
func (d *asyncAPIDoc) validate(schema, v any) []string {
	var errs []string
	d.check(schema, v, "$", &errs)
	return errs
}

func (d *asyncAPIDoc) check(schema, v any, at string, errs *[]string) {
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	if b, ok := schema.(bool); ok {
		if !b {
			fail("no value allowed")
		}
		return
	}
	s, ok := schema.(map[string]any)
	if !ok {
		fail("schema is a %T", schema)
		return
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.pointer(ref)
		if err != nil {
			fail("%v", err)
			return
		}
		d.check(target, v, at, errs)
		return
	}
	if types := schemaTypes(s); len(types) > 0 && !slices.ContainsFunc(types, func(ty string) bool { return hasType(ty, v) }) {
		fail("want %s, got %s", strings.Join(types, " or "), abbreviate(v))
		return
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return sameJSON(x, v) }) {
		fail("%s is not one of %v", abbreviate(v), e)
	}
	if c, ok := s["const"]; ok && !sameJSON(c, v) {
		fail("%s is not %v", abbreviate(v), c)
	}
	switch v := v.(type) {
	case string:
		n := utf8.RuneCountInString(v)
		if m, ok := s["maxLength"].(int); ok && n > m {
			fail("%d characters, more than %d", n, m)
		}
		if m, ok := s["minLength"].(int); ok && n < m {
			fail("%d characters, fewer than %d", n, m)
		}
		if p, ok := s["pattern"].(string); ok {
			re, err := compilePattern(p)
			if err != nil {
				fail("pattern %q: %v", p, err)
			} else if !re.MatchString(v) {
				fail("%s does not match %s", abbreviate(v), p)
			}
		}
		if f, ok := s["format"].(string); ok && !hasFormat(f, v) {
			fail("%s is not a %s", abbreviate(v), f)
		}
	case json.Number:
		x, _ := v.Float64()
		if m, ok := number(s["minimum"]); ok && x < m {
			fail("%s is less than %v", v, m)
		}
		if m, ok := number(s["maximum"]); ok && x > m {
			fail("%s is more than %v", v, m)
		}
	case map[string]any:
		for _, r := range stringList(s["required"]) {
			if _, ok := v[r]; !ok {
				fail("lacks required %q", r)
			}
		}
		if m, ok := s["maxProperties"].(int); ok && len(v) > m {
			fail("%d properties, more than %d", len(v), m)
		}
		props, _ := s["properties"].(map[string]any)
		for _, k := range sortedKeys(v) {
			if pn, ok := s["propertyNames"]; ok {
				d.check(pn, k, at+" key "+strconv.Quote(k), errs)
			}
			if ps, ok := props[k]; ok {
				d.check(ps, v[k], at+"."+k, errs)
			} else if ap, ok := s["additionalProperties"]; ok {
				d.check(ap, v[k], at+"."+k, errs)
			}
		}
	case []any:
		if m, ok := s["minItems"].(int); ok && len(v) < m {
			fail("%d items, fewer than %d", len(v), m)
		}
		if items, ok := s["items"]; ok {
			for i, x := range v {
				d.check(items, x, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	}
	for _, sub := range anyList(s["allOf"]) {
		d.check(sub, v, at, errs)
	}
	if alts := anyList(s["anyOf"]); len(alts) > 0 {
		if d.matches(alts, v) == 0 {
			fail("%s matches none of anyOf", abbreviate(v))
		}
	}
	if alts := anyList(s["oneOf"]); len(alts) > 0 {
		if n := d.matches(alts, v); n != 1 {
			fail("%s matches %d of oneOf, want exactly 1", abbreviate(v), n)
		}
	}
	if cond, ok := s["if"]; ok {
		if len(d.validate(cond, v)) == 0 {
			if then, ok := s["then"]; ok {
				d.check(then, v, at, errs)
			}
		} else if els, ok := s["else"]; ok {
			d.check(els, v, at, errs)
		}
	}
}

func (d *asyncAPIDoc) matches(alts []any, v any) int {
	n := 0
	for _, alt := range alts {
		if len(d.validate(alt, v)) == 0 {
			n++
		}
	}
	return n
}

func anyList(v any) []any { l, _ := v.([]any); return l }

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func hasType(ty string, v any) bool {
	switch ty {
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return true
		}
		f, err := n.Float64()
		return err == nil && f == float64(int64(f))
	}
	return false
}

func hasFormat(format, s string) bool {
	switch format {
	case "date":
		_, err := time.Parse(time.DateOnly, s)
		return err == nil
	case "date-time":
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "uuid":
		return uuidPattern.MatchString(s)
	}
	return true // email and others: the document gives a pattern too
}

func compilePattern(p string) (*regexp.Regexp, error) {
	if v, ok := schemaRegexps.Load(p); ok {
		return v.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	schemaRegexps.Store(p, re)
	return re, nil
}

// sameJSON compares a value of the document (as yaml.v3 decodes it) with a
// JSON value by their encodings.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func abbreviate(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
