// Package statecursor encodes the cursor of the video and stream state
// lists: the (updated_at, id) of a page's last row, which both stores page
// by, opaque to clients.
package statecursor

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

const prefix = "st1:"

// Encode returns the cursor after the row (at, id).
func Encode(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

// Decode reads a cursor Encode made; any other string is EINVALID.
func Decode(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), prefix); ok {
			if us, id, ok := strings.Cut(rest, ":"); ok {
				if v, err := strconv.ParseInt(us, 10, 64); err == nil {
					return time.UnixMicro(v).UTC(), id, nil
				}
			}
		}
	}
	return time.Time{}, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "cursor", Message: "cursor is not one this server returned"}
}
