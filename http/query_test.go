package http

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzCheckQuery: checkQuery never panics, accepts a query exactly when it
// parses and names only accepted parameters, and a refusal names an
// unknown parameter.
func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"", "limit=1", "limit=1&cursor=x", "x=1", "limit=%zz", "a=1&b=2", "=", "&&", "limit", "status=failed;x=1", "cursor=a%26b"} {
		f.Add(s)
	}
	rt := &route{Query: []string{"limit", "cursor"}}
	f.Fuzz(func(t *testing.T, raw string) {
		err := rt.checkQuery(raw)
		q, perr := url.ParseQuery(raw)
		ok := perr == nil
		for k := range q {
			ok = ok && slices.Contains(rt.Query, k)
		}
		if (err == nil) != ok {
			t.Fatalf("checkQuery(%q) = %v; parse error %v, params %v", raw, err, perr, q)
		}
		if err != nil && perr == nil && !strings.Contains(err.Error(), "accepted: limit, cursor") {
			t.Fatalf("checkQuery(%q) = %v: does not list the accepted parameters", raw, err)
		}
	})
}
