package kinehook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchemas compiles every catalog schema with a draft 2020-12 validator.
func compileSchemas(t *testing.T) map[EventType]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	out := map[EventType]*jsonschema.Schema{}
	for _, info := range Catalog() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(info.Schema))
		if err != nil {
			t.Fatalf("%s: schema is not JSON: %v", info.Name, err)
		}
		url := "https://github.com/kinehook/kinehook/schemas/" + string(info.Name) + ".json"
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s: schema does not compile: %v", info.Name, err)
		}
		out[info.Name] = sch
	}
	return out
}

func validate(t *testing.T, sch *jsonschema.Schema, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// seedExamples extracts the ```json blocks of the seed document.
func seedExamples(t *testing.T) [][]byte {
	t.Helper()
	doc, err := os.ReadFile("testdata/seed/webhook-types.md")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestCatalogListsEveryTypeWithSchema(t *testing.T) {
	cat := Catalog()
	if len(cat) != len(EventTypes) {
		t.Fatalf("Catalog has %d entries, want %d", len(cat), len(EventTypes))
	}
	for i, info := range cat {
		if info.Name != EventTypes[i] {
			t.Errorf("entry %d is %s, want %s (documentation order)", i, info.Name, EventTypes[i])
		}
		if info.Description == "" || len(info.Examples) == 0 {
			t.Errorf("%s: description or examples missing", info.Name)
		}
		var s map[string]any
		if err := json.Unmarshal(info.Schema, &s); err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v", info.Name, s["$schema"])
		}
	}
	// The catalog hands out copies.
	cat[0].Schema[0] = 'X'
	if Catalog()[0].Schema[0] != '{' {
		t.Error("changing a returned schema changed the catalog")
	}
	if _, ok := Lookup("video.done"); ok {
		t.Error("Lookup found a type that is not in the catalog")
	}
}

func TestSeedExamplesMatchSchemasAndCatalog(t *testing.T) {
	schemas := compileSchemas(t)
	examples := seedExamples(t)
	if len(examples) != 8 {
		t.Fatalf("found %d JSON examples in the seed, want 8", len(examples))
	}
	covered := map[EventType]bool{}
	for _, ex := range examples {
		ev, err := ParseStrict(ex)
		if err != nil {
			t.Fatalf("ParseStrict(seed example) = %v\n%s", err, ex)
		}
		covered[ev.Type] = true
		if err := validate(t, schemas[ev.Type], ex); err != nil {
			t.Errorf("seed example of %s fails its schema: %v", ev.Type, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, ex); err != nil {
			t.Fatal(err)
		}
		info, _ := Lookup(ev.Type)
		found := false
		for _, c := range info.Examples {
			found = found || bytes.Equal(c, compact.Bytes())
		}
		if !found {
			t.Errorf("seed example %s is not among the catalog's examples of %s", compact.Bytes(), ev.Type)
		}
	}
	for _, typ := range EventTypes {
		if !covered[typ] {
			t.Errorf("no seed example for %s", typ)
		}
		if s := SampleEvent(typ); s == nil || !json.Valid(s) {
			t.Errorf("SampleEvent(%s) = %q", typ, s)
		}
	}
	want := `{"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}}`
	if got := string(SampleEvent(EventMediaUpdateStatus)); got != want {
		t.Errorf("SampleEvent(media.update.status) = %s, want %s", got, want)
	}
	if SampleEvent("video.done") != nil {
		t.Error("SampleEvent of an unknown type is not nil")
	}
}

// strictSamples are bodies on both sides of the line; ParseStrict and the
// schemas must draw it in the same place.
var strictSamples = []struct {
	typ  EventType // schema to check against
	body string
	ok   bool
}{
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"done"}}`, true},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"error","message":"boom"}}`, true},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"pre-processing","message":""}}`, true},
	{EventMediaUpdateStatus, `{"data":{"status":"suspended","id":"v1"},"event":"media.update.status"}`, true},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"a,\"b{[,\\","status":"error","message":"x, }] y\u00e9 \u2028"}}`, true},
	{EventMediaUpdateStatus, ` { "event" : "media.update.status" , "data" : { "id" : "v1" , "status" : "done" } } `, true},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"smile \ud83d\ude00 \\ud800","status":"done"}}`, true},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"failed"}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1"}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"","status":"done"}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":7,"status":"done"}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"done","extra":1}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"done","message":null}}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v1","status":"done"},"id":"x"}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status","data":[]}`, false},
	{EventMediaUpdateStatus, `{"event":"media.update.status"}`, false},
	{EventMediaUpdateStatus, `{"event":"video.done","data":{"id":"v1","status":"done"}}`, false},
	{EventMediaUpdateStatus, `[]`, false},
	{EventLiveCreated, `{"event":"live.created","data":{"event_id":"e1"}}`, true},
	{EventLiveCreated, `{"event":"live.created","data":{"event_id":"e1","video_id":"v1"}}`, false},
	{EventLiveCreated, `{"event":"live.created","data":{"event_id":"e1","video_id":""}}`, false},
	{EventLiveCreated, `{"event":"live.created","data":{"event_id":""}}`, false},
	{EventLiveCreated, `{"event":"live.created","data":{}}`, false},
	{EventLiveFinished, `{"event":"live.finished","data":{"event_id":"e1","video_id":"v1"}}`, true},
	{EventLiveFinished, `{"event":"live.finished","data":{"event_id":"e1","video_id":""}}`, true},
	{EventLiveFinished, `{"event":"live.finished","data":{"event_id":"e1"}}`, true},
	{EventLiveFinished, `{"event":"live.finished","data":{"event_id":"e1","video_id":5}}`, false},
	{EventLiveFinished, `{"event":"live.finished","data":{"event_id":["e1"]}}`, false},
	{EventLiveEnabled, `{"event":"live.enabled","data":{"event_id":"e1","status":"on"}}`, false},
	{EventLiveCancelled, `{"event":"live.enabled","data":{"event_id":"e1"}}`, false},
}

func TestStrictParsingAgreesWithSchemas(t *testing.T) {
	schemas := compileSchemas(t)
	for _, s := range strictSamples {
		schemaErr := validate(t, schemas[s.typ], []byte(s.body))
		_, strictErr := ParseStrict([]byte(s.body))
		if (schemaErr == nil) != s.ok {
			t.Errorf("schema %s on %s: err=%v, want ok=%v", s.typ, s.body, schemaErr, s.ok)
		}
		// ParseStrict picks the schema by the body's own type, so a body of
		// another valid type is the one case where they may differ.
		if s.typ == EventLiveCancelled {
			continue
		}
		if (strictErr == nil) != s.ok {
			t.Errorf("ParseStrict(%s): err=%v, want ok=%v", s.body, strictErr, s.ok)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		strict    bool
		field     string
		malformed bool
	}{
		{"not json", `{"event":`, false, "body", true},
		{"empty", ``, false, "body", true},
		{"array", `[1]`, false, "body", true},
		{"null", `null`, true, "body", true},
		{"no event", `{"data":{}}`, false, "event", false},
		{"event number", `{"event":1,"data":{}}`, false, "event", false},
		{"no data", `{"event":"live.created"}`, false, "data", false},
		{"data string", `{"event":"live.created","data":"x"}`, false, "data", false},
		{"missing id", `{"event":"media.update.status","data":{"status":"done"}}`, false, "data.id", false},
		{"missing status", `{"event":"media.update.status","data":{"id":"v"}}`, false, "data.status", false},
		{"status number", `{"event":"media.update.status","data":{"id":"v","status":3}}`, false, "data.status", false},
		{"message object strict", `{"event":"media.update.status","data":{"id":"v","status":"error","message":{}}}`, true, "data.message", false},
		{"video_id null strict", `{"event":"live.finished","data":{"event_id":"e","video_id":null}}`, true, "data.video_id", false},
		{"missing event_id", `{"event":"live.finished","data":{"video_id":"v"}}`, false, "data.event_id", false},
		{"unknown status strict", `{"event":"media.update.status","data":{"id":"v","status":"failed"}}`, true, "data.status", false},
		{"unknown type strict", `{"event":"video.done","data":{}}`, true, "event", false},
		{"unknown field strict", `{"event":"live.created","data":{"event_id":"e","b":1,"a":2}}`, true, "data.a", false},
		{"video_id strict", `{"event":"live.created","data":{"event_id":"e","video_id":"v"}}`, true, "data.video_id", false},
		{"top field strict", `{"event":"live.created","data":{"event_id":"e"},"timestamp":"x"}`, true, "timestamp", false},
		{"event twice strict", `{"event":"live.created","event":"media.update.status","data":{"id":"x","status":"done"}}`, true, "body", true},
		{"data twice strict", `{"event":"media.update.status","data":{"bogus":1},"data":{"id":"y","status":"done"}}`, true, "body", true},
		{"data key twice strict", `{"event":"media.update.status","data":{"id":"v","status":"done","id":"w"}}`, true, "data", true},
		{"escaped key twice strict", `{"event":"live.created","data":{"event_id":"e","event\u005fid":"f"}}`, true, "data", true},
		{"not utf-8 strict", "{\"event\":\"media.update.status\",\"data\":{\"id\":\"\xff\",\"status\":\"done\"}}", true, "body", true},
		{"lone high surrogate strict", `{"event":"media.update.status","data":{"id":"v\ud800x","status":"done"}}`, true, "body", true},
		{"lone low surrogate strict", `{"event":"live.created","data":{"event_id":"\udc00"}}`, true, "body", true},
		{"high surrogate at the end strict", `{"event":"live.created","data":{"event_id":"e\uD83D"}}`, true, "body", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseLenient
			if tt.strict {
				parse = ParseStrict
			}
			_, err := parse([]byte(tt.body))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || ve.Malformed != tt.malformed || ve.Expected == "" {
				t.Errorf("err = %+v, want field %q malformed %v", ve, tt.field, tt.malformed)
			}
		})
	}
}

func TestParseLenientFlagsUnknownValues(t *testing.T) {
	tests := []struct {
		body                       string
		unknownType, unknownStatus bool
		key                        string
	}{
		{`{"event":"media.update.status","data":{"id":"v1","status":"failed","extra":true}}`, false, true, "v1"},
		{`{"event":"video.done","data":{"id":"v2"}}`, true, false, "v2"},
		{`{"event":"live.paused","data":{"event_id":"e3"}}`, true, false, "e3"},
		{`{"event":"live.created","data":{"event_id":"e4","video_id":"v"},"timestamp":"now"}`, false, false, "e4"},
		// Optional fields that are null or of another type read as absent.
		{`{"event":"live.finished","data":{"event_id":"e5","video_id":null}}`, false, false, "e5"},
		{`{"event":"media.update.status","data":{"id":"v6","status":"error","message":{"text":"x"}}}`, false, false, "v6"},
	}
	for _, tt := range tests {
		ev, err := ParseLenient([]byte(tt.body))
		if err != nil {
			t.Fatalf("ParseLenient(%s) = %v", tt.body, err)
		}
		if ev.UnknownType != tt.unknownType || ev.UnknownStatus != tt.unknownStatus || ev.ResourceKey() != tt.key {
			t.Errorf("ParseLenient(%s) = %+v (key %q)", tt.body, ev, ev.ResourceKey())
		}
		if _, err := ParseStrict([]byte(tt.body)); err == nil {
			t.Errorf("ParseStrict(%s) accepted it", tt.body)
		}
	}
}

// FuzzStrictMatchesSchema: for any body naming a catalog type, ParseStrict
// accepts it exactly when that type's JSON Schema does.
func FuzzStrictMatchesSchema(f *testing.F) {
	for _, s := range strictSamples {
		f.Add([]byte(s.body))
	}
	schemas := map[EventType]*jsonschema.Schema{}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	for _, info := range Catalog() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(info.Schema))
		if err != nil {
			f.Fatal(err)
		}
		url := "https://github.com/kinehook/kinehook/schemas/" + string(info.Name) + ".json"
		if err := c.AddResource(url, doc); err != nil {
			f.Fatal(err)
		}
		if schemas[info.Name], err = c.Compile(url); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var top struct {
			Event EventType `json:"event"`
		}
		// The schema cannot see bytes that are not UTF-8, an unpaired
		// surrogate or a key given twice; ParseStrict rejects them
		// (TestParseErrorsNameTheField, FuzzParse).
		if json.Unmarshal(body, &top) != nil || !top.Event.Known() || !strictText(body) {
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return
		}
		schemaErr := schemas[top.Event].Validate(inst)
		_, strictErr := ParseStrict(body)
		if (schemaErr == nil) != (strictErr == nil) {
			t.Fatalf("%s: schema says %v, ParseStrict says %v", body, schemaErr, strictErr)
		}
	})
}

// strictText reports whether body is JSON text that jsontext (the JSON v2
// work of the Go team), an independent parser, accepts as it is strict by
// default: UTF-8, no unpaired surrogate escape, no object member name twice.
// ParseStrict must refuse whatever it refuses; the schema validator (like
// encoding/json) does not see those faults, so such bodies are out of the
// schema comparison.
func strictText(body []byte) bool {
	d := jsontext.NewDecoder(bytes.NewReader(body))
	for {
		if _, err := d.ReadToken(); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}
