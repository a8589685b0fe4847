//go:build !unix

package cputime

import "time"

// Self is 0 where there is no getrusage (Windows): the kinehook binary
// must still build there (bench then reports no CPU figures).
func Self() time.Duration { return 0 }
