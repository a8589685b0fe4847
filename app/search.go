package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// DeliverySearch is a delivery search as a client writes it, before
// validation: the query of GET .../deliveries (DeliverySearchFromQuery) or
// the body of a bulk retry (RetrySearch). Filter checks it.
type DeliverySearch struct {
	EndpointID string
	// Statuses are the status values given; each may be a comma-separated list.
	Statuses []string
	Event    string
	Resource string
	EventID  string
	// Since and Until are RFC 3339 times.
	Since, Until string
	Cursor       string
	Limit        string
}

// DeliverySearchFromQuery reads a search from a query string: endpoint_id,
// status (repeated or comma-separated), event, resource (or resource_id,
// the events list's name), event_id, since, until, cursor, limit.
func DeliverySearchFromQuery(q url.Values) (DeliverySearch, error) {
	s := DeliverySearch{
		EndpointID: q.Get("endpoint_id"), Statuses: q["status"], Event: q.Get("event"), Resource: q.Get("resource"),
		EventID: q.Get("event_id"), Since: q.Get("since"), Until: q.Get("until"), Cursor: q.Get("cursor"), Limit: q.Get("limit"),
	}
	if r := q.Get("resource_id"); r != "" {
		if s.Resource != "" && s.Resource != r {
			return s, malformed("resource_id", "resource and resource_id name the same filter; give one")
		}
		s.Resource = r
	}
	return s, nil
}

func malformed(field, msg string) error {
	return &kinehook.Error{Code: kinehook.EMALFORMED, Field: field, Message: msg}
}

// ParseStatuses reads delivery statuses from values that may each be a
// comma-separated list; empty items are skipped and repeats dropped. An
// unknown status is EMALFORMED (field status).
func ParseStatuses(values []string) ([]kinehook.DeliveryStatus, error) {
	var out []kinehook.DeliveryStatus
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			st := kinehook.DeliveryStatus(item)
			if !st.Known() {
				return nil, malformed("status", fmt.Sprintf("unknown status %q; expected one or several of pending, retrying, succeeded, failed (repeated or comma-separated)", item))
			}
			if !slices.Contains(out, st) {
				out = append(out, st)
			}
		}
	}
	return out, nil
}

// parseTime reads an RFC 3339 time of a search; a space stands for the '+'
// of an offset a query string did not escape.
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
	if err != nil {
		return time.Time{}, malformed(field, field+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// Filter checks the search and returns it as the store's filter. Every
// refusal is EMALFORMED (400) naming the parameter.
func (s DeliverySearch) Filter() (kinehook.DeliveryFilter, error) {
	f := kinehook.DeliveryFilter{EndpointID: s.EndpointID, ResourceKey: s.Resource, EventID: s.EventID, Cursor: s.Cursor, Limit: DefaultPageLimit}
	if s.Limit != "" {
		n, err := strconv.Atoi(s.Limit)
		if err != nil || n < 1 || n > MaxPageLimit {
			return f, malformed("limit", fmt.Sprintf("limit must be an integer from 1 to %d", MaxPageLimit))
		}
		f.Limit = n
	}
	var err error
	if f.Statuses, err = ParseStatuses(s.Statuses); err != nil {
		return f, err
	}
	if s.Event != "" {
		t := kinehook.EventType(s.Event)
		if !t.Known() && !t.Operational() {
			return f, malformed("event", fmt.Sprintf("unknown event type %q; expected one of %v or %v", s.Event, kinehook.EventTypes, kinehook.OperationalEventTypes))
		}
		f.EventType = t
	}
	if s.Since != "" {
		if f.Since, err = parseTime("since", s.Since); err != nil {
			return f, err
		}
	}
	if s.Until != "" {
		if f.Until, err = parseTime("until", s.Until); err != nil {
			return f, err
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, malformed("until", "until must be after since")
	}
	if f.Cursor != "" {
		if _, _, err := kinehook.DecodeDeliveryCursor(f.Cursor, false); err != nil {
			return f, malformed("cursor", "cursor is not one this server returned")
		}
	}
	return f, nil
}

// SearchDeliveries pages a project's deliveries newest first, each with its
// event's type, resource and time; it returns the next cursor ("" at the
// end). The endpoint filter may name a deleted endpoint: its history stays.
func (a *App) SearchDeliveries(ctx context.Context, pid string, f kinehook.DeliveryFilter, projectKnown bool) ([]*kinehook.Delivery, string, error) {
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, "", err
	}
	ds, next, err := a.store.SearchDeliveries(ctx, pid, f)
	if err != nil {
		return nil, "", fmt.Errorf("search deliveries: %w", err)
	}
	return ds, next, nil
}

// SearchEndpointDeliveries is SearchDeliveries for one existing endpoint
// (ENOTFOUND otherwise); an endpoint_id in f must name the same one.
func (a *App) SearchEndpointDeliveries(ctx context.Context, pid, eid string, f kinehook.DeliveryFilter) ([]*kinehook.Delivery, string, error) {
	if f.EndpointID != "" && f.EndpointID != eid {
		return nil, "", malformed("endpoint_id", "endpoint_id differs from the endpoint of the path")
	}
	if _, err := a.store.GetEndpoint(ctx, pid, eid); err != nil {
		return nil, "", fmt.Errorf("get endpoint: %w", err)
	}
	f.EndpointID = eid
	return a.SearchDeliveries(ctx, pid, f, true)
}

// RetrySearch is the body of a bulk retry: the search filters, without
// paging. status may be a string (comma-separated) or a list of strings.
type RetrySearch struct {
	EndpointID string     `json:"endpoint_id"`
	Status     StatusList `json:"status"`
	Event      string     `json:"event"`
	Resource   string     `json:"resource"`
	EventID    string     `json:"event_id"`
	Since      string     `json:"since"`
	Until      string     `json:"until"`
}

// StatusList is a JSON status filter: "failed", "failed,retrying" or
// ["failed", "retrying"].
type StatusList []string

// UnmarshalJSON takes a string or a list of strings.
func (l *StatusList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = StatusList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return malformed("status", "status must be a string or a list of strings")
	}
	*l = many
	return nil
}

// Search returns the body as a DeliverySearch.
func (r RetrySearch) Search() DeliverySearch {
	return DeliverySearch{EndpointID: r.EndpointID, Statuses: r.Status, Event: r.Event, Resource: r.Resource,
		EventID: r.EventID, Since: r.Since, Until: r.Until}
}

// RetryDeliveries re-queues every failed delivery of the project that the
// search matches, oldest first so that each resource's order is kept, and
// returns how many. Only failed deliveries are re-queued, whatever the
// search's status says: no status means failed, and a status list without
// failed matches nothing. An endpoint_id must name an existing endpoint
// (ENOTFOUND) that is enabled (ECONFLICT: nothing could be sent); without
// one, a disabled endpoint's deliveries are re-queued and go once it is
// enabled, and a deleted endpoint's stay failed.
func (a *App) RetryDeliveries(ctx context.Context, pid string, s DeliverySearch, projectKnown bool) (int, error) {
	s.Cursor, s.Limit = "", ""
	f, err := s.Filter()
	if err != nil {
		return 0, err
	}
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, kinehook.DeliveryFailed) {
		return 0, a.projectExists(ctx, pid, projectKnown)
	}
	if f.EndpointID != "" {
		ep, err := a.store.GetEndpoint(ctx, pid, f.EndpointID)
		if err != nil {
			return 0, fmt.Errorf("get endpoint: %w", err)
		}
		if ep.Disabled {
			return 0, &kinehook.Error{Code: kinehook.ECONFLICT, Field: "endpoint_id",
				Message: fmt.Sprintf("endpoint %s is disabled (%s): enable it first, then retry its deliveries", ep.ID, ep.DisabledReason)}
		}
	} else if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return 0, err
	}
	n, err := a.disp.RetryFailed(ctx, pid, f)
	if err != nil {
		return n, fmt.Errorf("retry deliveries: %w", err)
	}
	return n, nil
}
