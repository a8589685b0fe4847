package kinehook

import (
	"encoding/json"
	"time"
)

// OperationalEvent is kinehook's own webhook about one of a project's
// endpoints (endpoint.disabled, endpoint.recovered). The server records it in
// the project's event log and delivers it, like any webhook, to the
// endpoints that name its type in their filter. Its JSON form:
//
//	{"event":"endpoint.disabled","data":{"project_id":"prj_..","endpoint_id":"ep_..",
//	 "url":"https://..","reason":"endpoint answered 410 Gone",
//	 "failing_since":"2026-11-27T03:00:00Z","at":"2026-11-27T03:10:00Z"}}
type OperationalEvent struct {
	Event EventType       `json:"event"`
	Data  OperationalData `json:"data"`
}

// OperationalData is the data of an OperationalEvent: which endpoint, why,
// and since when it has been failing (zero when it was not).
type OperationalData struct {
	ProjectID    string    `json:"project_id"`
	EndpointID   string    `json:"endpoint_id"`
	URL          string    `json:"url"`
	Reason       string    `json:"reason"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	At           time.Time `json:"at"`
}

// parseOperational reads the data of an operational event leniently (a
// receiver takes what a newer server adds); the endpoint id is required.
func parseOperational(raw json.RawMessage) (*OperationalData, error) {
	var d OperationalData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, &ValidationError{Field: "data", Expected: "the data of an operational event", Got: describe(raw)}
	}
	if d.EndpointID == "" {
		return nil, &ValidationError{Field: "data.endpoint_id", Expected: "a non-empty string (the endpoint's id)", Got: "missing"}
	}
	return &d, nil
}
