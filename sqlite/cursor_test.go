package sqlite

import (
	"testing"

	"github.com/kinehook/kinehook"
)

// FuzzCursor: any string is either rejected as invalid input or decodes to a
// positive Seq that encodes back to a cursor with the same Seq.
func FuzzCursor(f *testing.F) {
	for _, seed := range []string{encodeCursor(1), encodeCursor(1 << 40), "", "czE6MA", "czE6LTE", "%%%", "s1:5"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		seq, err := decodeCursor(c)
		if err != nil {
			if kinehook.ErrorCode(err) != kinehook.EINVALID {
				t.Fatalf("decodeCursor(%q): %v, want an EINVALID error", c, err)
			}
			return
		}
		if seq <= 0 {
			t.Fatalf("decodeCursor(%q) = %d, want > 0", c, seq)
		}
		again, err := decodeCursor(encodeCursor(seq))
		if err != nil || again != seq {
			t.Fatalf("round trip of %d: %d, %v", seq, again, err)
		}
	})
}

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []int64{1, 2, 99, 1 << 40, 1<<63 - 1} {
		got, err := decodeCursor(encodeCursor(seq))
		if err != nil || got != seq {
			t.Errorf("round trip %d: %d, %v", seq, got, err)
		}
	}
	for _, bad := range []string{"", "x", encodeCursor(1) + "!", "czE6MA" /* s1:0 */} {
		if _, err := decodeCursor(bad); kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("decodeCursor(%q) = %v, want EINVALID", bad, err)
		}
	}
}
