package postgres

import "github.com/kinehook/kinehook"

// The optional abilities wiring requires (see kinehook.RetentionStore): a
// compile error here, not a server that silently skips retention or
// readiness.
var (
	_ kinehook.RetentionStore = (*Store)(nil)
	_ kinehook.Resealer       = (*Store)(nil)
)
