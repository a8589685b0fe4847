package delivery

import (
	"context"
	"log/slog"
)

// storeError logs a failed store operation at ERROR, unless the store's
// tracker takes err as part of an outage: the tracker logs an outage once
// (and its end, with the count of failures), so each failure of it goes to
// the debug log only. The loops retry as before either way.
func (e *Engine) storeError(msg string, err error, args ...any) {
	e.logStoreErr(slog.LevelError, msg, err, args)
}

// storeWarn is storeError at WARN.
func (e *Engine) storeWarn(msg string, err error, args ...any) {
	e.logStoreErr(slog.LevelWarn, msg, err, args)
}

func (e *Engine) logStoreErr(level slog.Level, msg string, err error, args []any) {
	args = append(args, "err", err)
	if e.store.Health().Fail(err) != "" {
		level = slog.LevelDebug
	}
	e.log.Log(context.Background(), level, msg, args...)
}
