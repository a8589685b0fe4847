package kinehook

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
)

// schemaFS holds one JSON Schema (draft 2020-12) per catalog event type,
// named <type>.json. The schemas are strict, like ParseStrict: they describe
// what a producer may send.
//
//go:embed schemas/*.json
var schemaFS embed.FS

// EventTypeInfo describes one catalog event type, as served at
// GET /v1/event-types.
type EventTypeInfo struct {
	Name        EventType       `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	// Examples are the seed document's example bodies for this type.
	Examples []json.RawMessage `json:"examples"`
}

var catalog = mustLoadCatalog()

func mustLoadCatalog() map[EventType]EventTypeInfo {
	out := make(map[EventType]EventTypeInfo, len(EventTypes))
	for _, t := range EventTypes {
		raw, err := schemaFS.ReadFile("schemas/" + string(t) + ".json")
		if err != nil {
			panic(fmt.Sprintf("kinehook: schema of %s: %v", t, err))
		}
		var s struct {
			Description string            `json:"description"`
			Examples    []json.RawMessage `json:"examples"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			panic(fmt.Sprintf("kinehook: schema of %s: %v", t, err))
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			panic(fmt.Sprintf("kinehook: schema of %s: %v", t, err))
		}
		info := EventTypeInfo{Name: t, Description: s.Description, Schema: compact.Bytes()}
		for _, ex := range s.Examples {
			var c bytes.Buffer
			if err := json.Compact(&c, ex); err != nil {
				panic(fmt.Sprintf("kinehook: example of %s: %v", t, err))
			}
			info.Examples = append(info.Examples, c.Bytes())
		}
		if len(info.Examples) == 0 {
			panic(fmt.Sprintf("kinehook: schema of %s has no example", t))
		}
		out[t] = info
	}
	return out
}

// Catalog lists every event type of the catalog, in documentation order, with
// its description, JSON Schema and example bodies. The slices are copies; the
// caller may keep or change them.
func Catalog() []EventTypeInfo {
	out := make([]EventTypeInfo, 0, len(EventTypes))
	for _, t := range EventTypes {
		out = append(out, cloneInfo(catalog[t]))
	}
	return out
}

// Lookup returns the catalog entry of t, or false when t is not in the catalog.
func Lookup(t EventType) (EventTypeInfo, bool) {
	info, ok := catalog[t]
	if !ok {
		return EventTypeInfo{}, false
	}
	return cloneInfo(info), true
}

// SampleEvent returns the seed document's (first) example body for t,
// compact JSON, or nil when t is not in the catalog. Trigger, the dashboard's
// test event and the simulator send it.
func SampleEvent(t EventType) []byte {
	info, ok := catalog[t]
	if !ok {
		return nil
	}
	return bytes.Clone(info.Examples[0])
}

func cloneInfo(in EventTypeInfo) EventTypeInfo {
	out := in
	out.Schema = bytes.Clone(in.Schema)
	out.Examples = make([]json.RawMessage, len(in.Examples))
	for i, ex := range in.Examples {
		out.Examples[i] = bytes.Clone(ex)
	}
	return out
}
