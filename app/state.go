package app

import (
	"context"
	"fmt"

	"github.com/kinehook/kinehook"
)

// GetMedia returns a video's state: its status, message and history as
// the project's events told them, in acceptance order.
func (a *App) GetMedia(ctx context.Context, pid, id string, projectKnown bool) (*kinehook.MediaState, error) {
	st, err := a.getState(ctx, pid, kinehook.StateMedia, id, projectKnown)
	if err != nil {
		return nil, err
	}
	return st.Media(), nil
}

// GetLive returns a live stream's state.
func (a *App) GetLive(ctx context.Context, pid, id string, projectKnown bool) (*kinehook.LiveState, error) {
	st, err := a.getState(ctx, pid, kinehook.StateLive, id, projectKnown)
	if err != nil {
		return nil, err
	}
	return st.Live(), nil
}

func (a *App) getState(ctx context.Context, pid string, kind kinehook.StateKind, id string, projectKnown bool) (*kinehook.ResourceState, error) {
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, err
	}
	st, err := a.store.GetState(ctx, pid, kind, id)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		what := "video"
		if kind == kinehook.StateLive {
			what = "live stream"
		}
		return nil, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("no %s %q in this project's events", what, id)}
	}
	if err != nil {
		return nil, fmt.Errorf("get %s state: %w", kind, err)
	}
	return st, nil
}

// ListMedia pages a project's videos, most recently updated first.
func (a *App) ListMedia(ctx context.Context, pid string, f kinehook.StateFilter, projectKnown bool) ([]*kinehook.MediaState, string, error) {
	sts, next, err := a.listStates(ctx, pid, kinehook.StateMedia, f, projectKnown)
	out := make([]*kinehook.MediaState, len(sts))
	for i, st := range sts {
		out[i] = st.Media()
	}
	return out, next, err
}

// ListLive pages a project's live streams, most recently updated first.
func (a *App) ListLive(ctx context.Context, pid string, f kinehook.StateFilter, projectKnown bool) ([]*kinehook.LiveState, string, error) {
	sts, next, err := a.listStates(ctx, pid, kinehook.StateLive, f, projectKnown)
	out := make([]*kinehook.LiveState, len(sts))
	for i, st := range sts {
		out[i] = st.Live()
	}
	return out, next, err
}

func (a *App) listStates(ctx context.Context, pid string, kind kinehook.StateKind, f kinehook.StateFilter, projectKnown bool) ([]*kinehook.ResourceState, string, error) {
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, "", err
	}
	if f.Limit <= 0 {
		f.Limit = DefaultPageLimit
	}
	f.Limit = min(f.Limit, MaxPageLimit)
	sts, next, err := a.store.ListStates(ctx, pid, kind, f)
	if err != nil {
		return nil, "", fmt.Errorf("list %s states: %w", kind, err)
	}
	return sts, next, nil
}

// CountStates counts a project's videos or streams by status (the
// dashboard's overview).
func (a *App) CountStates(ctx context.Context, pid string, kind kinehook.StateKind) ([]kinehook.StateCount, error) {
	return a.store.CountStates(ctx, pid, kind)
}
