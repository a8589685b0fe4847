package http

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kinehook/kinehook"
)

// codeInvalidQuery is the code of a query string the route does not accept
// (an unknown parameter, or one that cannot be parsed): 400.
const codeInvalidQuery = "invalid_query"

// checkQuery answers whether rawQuery holds only the parameters rt accepts.
func (rt *route) checkQuery(rawQuery string) error {
	if rawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return &kinehook.Error{Code: codeInvalidQuery, Message: fmt.Sprintf("the query string cannot be parsed: %v", err)}
	}
	var unknown []string
	for k := range q {
		if !slices.Contains(rt.Query, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	quoted := make([]string, len(unknown))
	for i, k := range unknown {
		quoted[i] = fmt.Sprintf("%q", k)
	}
	what := "unknown query parameter " + quoted[0]
	if len(quoted) > 1 {
		what = "unknown query parameters " + strings.Join(quoted, ", ")
	}
	accepted := "this route accepts none"
	if len(rt.Query) > 0 {
		accepted = "accepted: " + strings.Join(rt.Query, ", ")
	}
	return &kinehook.Error{Code: codeInvalidQuery, Field: unknown[0], Message: what + "; " + accepted}
}
