package postgres

import (
	"os"
	"strconv"
	"testing"

	"github.com/kinehook/kinehook/storetest"
)

// BenchmarkStateMillion measures the state API on a project with a
// million videos (KINEHOOK_STATE_VIDEOS overrides the count).
func BenchmarkStateMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KINEHOOK_STATE_VIDEOS")); err == nil && v > 0 {
		n = v
	}
	s := openTestStore(b, Options{})
	storetest.BenchStateAPI(b, s, n)
}
