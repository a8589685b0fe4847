package sqlite

import "github.com/kinehook/kinehook"

// The optional store abilities wiring requires (see kinehook.RetentionStore):
// a compile error here, not a server that silently skips retention.
var (
	_ kinehook.RetentionStore = (*Store)(nil)
	_ kinehook.Resealer       = (*Store)(nil)
)
