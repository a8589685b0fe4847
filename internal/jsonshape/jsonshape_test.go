package jsonshape

import (
	"encoding/json"
	"testing"
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
