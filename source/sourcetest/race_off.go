//go:build !race

package sourcetest

// Race reports a build with the race detector, which slows the whole stack
// (store, engine, broker clients, kfake) several times over.
const Race = false
