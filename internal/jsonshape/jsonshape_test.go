package jsonshape

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

func TestOf(t *testing.T) {
	tests := []struct {
		in             string
		depth, members int
	}{
		{`{}`, 1, 0},
		{` { } `, 1, 0},
		{`[]`, 1, 0},
		{`{"a":1}`, 1, 1},
		{`{"a":1,"b":{"c":[1,2,3]},"d":"x"}`, 3, 3},
		{`{"a":"x,y{[","b":"\"}]","c":"\\"}`, 1, 3},
		{`[[1],[2,3],{}]`, 2, 3},
		{`[[1]]`, 2, 1},
		{`[1, true, null]`, 1, 3},
		{`[ 1 ]`, 1, 1},
		{`"a,b"`, 0, 0},
		{`7`, 0, 0},
	}
	for _, tt := range tests {
		d, m := Of([]byte(tt.in))
		if d != tt.depth || m != tt.members {
			t.Errorf("Of(%s) = %d, %d; want %d, %d", tt.in, d, m, tt.depth, tt.members)
		}
	}
}

// FuzzOf: for any JSON object or array, the member count agrees with
// encoding/json's (an object's keys counted before they collapse: a
// decoder's map can only be smaller).
func FuzzOf(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":2}],"c":"},"}`, `[1,[2],"]"]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, m := Of(b)
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) == nil && arr != nil && m != len(arr) {
			t.Fatalf("Of(%q) counts %d members, encoding/json %d", b, m, len(arr))
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil && obj != nil && m < len(obj) {
			t.Fatalf("Of(%q) counts %d members, encoding/json %d keys", b, m, len(obj))
		}
	})
}

func TestDuplicateKeyAndLoneSurrogate(t *testing.T) {
	tests := []struct {
		in     string
		dup    string // "" for none
		lonely int
	}{
		{`{"a":1,"b":2}`, "", -1},
		{`{"a":1,"a":2}`, "a", -1},
		{`{"a":{"b":1,"b":2}}`, "b", -1},
		{`{"a":[{"x":1},{"x":2}],"b":{"x":3}}`, "", -1}, // the same name in different objects
		{`{"a":[1,{"c":1}],"c":2}`, "", -1},
		{`{"a":1,"\u0061":2}`, "a", -1},
		{`{"h":{"X-A":"1","X-A":"2"}}`, "X-A", -1},
		{`[{"k":1},{"k":1,"k":2}]`, "k", -1},
		{`{"a":"\ud83d\ude00"}`, "", -1},
		{`{"a":"\\ud800"}`, "", -1},
		{`{"a":"x\ud800"}`, "", 7},
		{`{"a":"\udc00\ud800"}`, "", 6},
		{`{"\ud800":1}`, "", 2},
	}
	for _, tt := range tests {
		k, dup := DuplicateKey([]byte(tt.in))
		if dup != (tt.dup != "") || k != tt.dup {
			t.Errorf("DuplicateKey(%s) = %q, %v; want %q", tt.in, k, dup, tt.dup)
		}
		if at := LoneSurrogateAt([]byte(tt.in)); at != tt.lonely {
			t.Errorf("LoneSurrogateAt(%s) = %d, want %d", tt.in, at, tt.lonely)
		}
	}
}

// FuzzStrictText: for text encoding/json accepts, a name given twice or an
// unpaired surrogate is found exactly when jsontext (the Go team's strict
// JSON v2 parser) refuses the UTF-8 text.
func FuzzStrictText(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `{"a":"\ud800"}`, `["\ud83d\ude00"]`, `{"\u0061":1,"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		_, dup := DuplicateKey(b)
		ours := dup || LoneSurrogateAt(b) >= 0
		d := jsontext.NewDecoder(bytes.NewReader(b))
		var err error
		for err == nil {
			_, err = d.ReadToken()
		}
		theirs := !errors.Is(err, io.EOF)
		if ours != theirs {
			t.Fatalf("%q: ours %v (dup %v), jsontext %v", b, ours, dup, err)
		}
	})
}

func TestNULAt(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`{"a":"b"}`, -1},
		{`{"a":"\u0000"}`, 6},
		{`{"a":"x\u0000y"}`, 7},
		{`{"\u0000":1}`, 2},
		{`{"a":"\\u0000"}`, -1}, // a backslash, then the text u0000
		{`{"a":"\\\u0000"}`, 8},
		{`{"a":"\u00000"}`, 6},
		{`{"a":"\u0001"}`, -1},
		{`{"a":"\U0000"}`, -1}, // not an escape JSON has
		{`["\u0000"]`, 2},
		{`{"a":1}\u0000`, -1}, // outside a string: not JSON, for the parser to refuse
	}
	for _, tt := range tests {
		if got := NULAt([]byte(tt.in)); got != tt.want {
			t.Errorf("NULAt(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// FuzzNULAt: on JSON that encoding/json reads, NULAt finds a \u0000 exactly
// when a decoded string (a key or a value) holds U+0000.
func FuzzNULAt(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `{"a":"\\u0000"}`, `["x","\u0000"]`, `{"\u0000":[]}`, `"\\\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if _, dup := DuplicateKey(b); dup {
			return // encoding/json keeps the last copy of a key
		}
		if has, at := holdsNUL(v), NULAt(b); has != (at >= 0) {
			t.Fatalf("NULAt(%q) = %d, but a decoded string holds NUL: %v", b, at, has)
		}
	})
}

func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		return slices.ContainsFunc(v, holdsNUL)
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(x) {
				return true
			}
		}
	}
	return false
}
