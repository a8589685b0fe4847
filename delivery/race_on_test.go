//go:build race

package delivery

// raceEnabled: the race detector's bookkeeping makes goroutines and
// allocations heavier, so memory bounds do not hold under it.
const raceEnabled = true
