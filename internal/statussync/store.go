package statussync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schema is created on open. Times are UTC text of fixed width, so that
// comparing them as strings (MAX) compares them as times.
const schema = `
CREATE TABLE IF NOT EXISTS videos (
	id            TEXT PRIMARY KEY,
	status        TEXT NOT NULL,
	error_message TEXT NOT NULL DEFAULT '',
	updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS live_events (
	event_id           TEXT PRIMARY KEY,
	status             TEXT NOT NULL,
	recording_video_id TEXT NOT NULL DEFAULT '',
	finished_at        TEXT NOT NULL DEFAULT '',
	updated_at         TEXT NOT NULL
);`

// timeLayout is fixed-width so that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: %w", s, err)
	}
	return t, nil
}

// Store is the SQLite database of videos and live events.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating if needed) the SQLite file at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer at a time is what SQLite does anyway; one connection keeps
	// transactions from waiting on each other's locks.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Video is a row of videos.
type Video struct {
	ID           string
	Status       string
	ErrorMessage string
	UpdatedAt    time.Time
}

// LiveEvent is a row of live_events.
type LiveEvent struct {
	EventID          string
	Status           string
	RecordingVideoID string
	FinishedAt       time.Time
	UpdatedAt        time.Time
}

// ErrNotFound is returned for a row that does not exist.
var ErrNotFound = errors.New("not found")

// GetVideo returns the video id.
func (s *Store) GetVideo(ctx context.Context, id string) (*Video, error) {
	var v Video
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT id, status, error_message, updated_at FROM videos WHERE id = ?`, id).
		Scan(&v.ID, &v.Status, &v.ErrorMessage, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("video %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get video %s: %w", id, err)
	}
	if v.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &v, nil
}

// GetLiveEvent returns the live event id.
func (s *Store) GetLiveEvent(ctx context.Context, id string) (*LiveEvent, error) {
	var l LiveEvent
	var finished, updated string
	err := s.db.QueryRowContext(ctx, `SELECT event_id, status, recording_video_id, finished_at, updated_at FROM live_events WHERE event_id = ?`, id).
		Scan(&l.EventID, &l.Status, &l.RecordingVideoID, &finished, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("live event %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get live event %s: %w", id, err)
	}
	if l.FinishedAt, err = parseTime(finished); err != nil {
		return nil, err
	}
	if l.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &l, nil
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// setVideoStatus records a status in tx and returns the previous one ("" for
// a new video). updated_at never goes backwards, even if the clock does.
func setVideoStatus(ctx context.Context, tx *sql.Tx, id, status, message string, now time.Time) (string, error) {
	var prev string
	err := tx.QueryRowContext(ctx, `SELECT status FROM videos WHERE id = ?`, id).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read video %s: %w", id, err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO videos (id, status, error_message, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			status = excluded.status,
			error_message = excluded.error_message,
			updated_at = MAX(videos.updated_at, excluded.updated_at)`,
		id, status, message, formatTime(now))
	if err != nil {
		return "", fmt.Errorf("write video %s: %w", id, err)
	}
	return prev, nil
}

// setLiveStatus records a live event's status in tx and returns the previous
// row state. finished_at and the recording are set by live.finished only.
func setLiveStatus(ctx context.Context, tx *sql.Tx, eventID, status, recording string, finished bool, now time.Time) (prevStatus, prevRecording string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT status, recording_video_id FROM live_events WHERE event_id = ?`, eventID).Scan(&prevStatus, &prevRecording)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("read live event %s: %w", eventID, err)
	}
	finishedAt := ""
	if finished {
		finishedAt = formatTime(now)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO live_events (event_id, status, recording_video_id, finished_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO UPDATE SET
			status = excluded.status,
			recording_video_id = CASE WHEN excluded.recording_video_id != '' THEN excluded.recording_video_id ELSE live_events.recording_video_id END,
			finished_at = CASE WHEN excluded.finished_at != '' AND live_events.finished_at = '' THEN excluded.finished_at ELSE live_events.finished_at END,
			updated_at = MAX(live_events.updated_at, excluded.updated_at)`,
		eventID, status, recording, finishedAt, formatTime(now))
	if err != nil {
		return "", "", fmt.Errorf("write live event %s: %w", eventID, err)
	}
	return prevStatus, prevRecording, nil
}

// Counts is how many rows of each table are in each status: what a dashboard
// or a report of the receiver shows at a glance.
type Counts struct {
	// Videos maps a video status (done, error, processing...) to its count.
	Videos map[string]int
	// LiveEvents maps a live event status (finished, cancelled...) to its count.
	LiveEvents map[string]int
	// Recordings is how many live events have a recording video id.
	Recordings int
}

// Counts counts videos and live events by status, in one read transaction so
// that the figures agree with each other.
func (s *Store) Counts(ctx context.Context) (*Counts, error) {
	c := &Counts{Videos: map[string]int{}, LiveEvents: map[string]int{}}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("count: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to undo
	count := func(query string, into map[string]int) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var status string
			var n int
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			into[status] = n
		}
		return rows.Err()
	}
	if err := count(`SELECT status, COUNT(*) FROM videos GROUP BY status`, c.Videos); err != nil {
		return nil, fmt.Errorf("count videos: %w", err)
	}
	if err := count(`SELECT status, COUNT(*) FROM live_events GROUP BY status`, c.LiveEvents); err != nil {
		return nil, fmt.Errorf("count live events: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM live_events WHERE recording_video_id != ''`).Scan(&c.Recordings); err != nil {
		return nil, fmt.Errorf("count recordings: %w", err)
	}
	return c, nil
}
