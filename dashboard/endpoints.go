package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// endpointForm is the create/edit form as typed, so a refused form comes
// back with the user's input and a message per field.
type endpointForm struct {
	URL         string
	Description string
	EventTypes  []string
	Headers     string
	RateLimit   string
	MaxInFlight string
	Errors      map[string]string
	// Managed: the endpoint a project's operations_url made; its URL and
	// event types follow that setting and are shown, not edited.
	Managed bool
	// Choices are the filter checkboxes: every catalog type and its prefixes.
	Choices []filterChoice
}

// filterChoice is one event-type checkbox.
type filterChoice struct {
	Value   string
	Label   string
	Checked bool
}

// filterValues are the offered filters: each catalog type, "live.*", and
// kinehook's operational events ("endpoint.*"), which only endpoints that
// name them receive.
func filterValues() []string {
	out := make([]string, 0, len(kinehook.EventTypes)+2)
	for _, t := range kinehook.EventTypes {
		out = append(out, string(t))
	}
	return append(out, "live.*", "endpoint.*")
}

func (f *endpointForm) fillChoices() {
	f.Choices = f.Choices[:0]
	for _, v := range filterValues() {
		label := v
		switch v {
		case "live.*":
			label = "live.* (every live event, present and future)"
		case "endpoint.*":
			label = "endpoint.* (kinehook's operational events: endpoint.disabled, endpoint.recovered)"
		}
		f.Choices = append(f.Choices, filterChoice{Value: v, Label: label, Checked: slices.Contains(f.EventTypes, v)})
	}
	// Filters set through the API that the checkboxes do not offer stay visible.
	for _, v := range f.EventTypes {
		if !slices.Contains(filterValues(), v) {
			f.Choices = append(f.Choices, filterChoice{Value: v, Label: v, Checked: true})
		}
	}
}

// formFromEndpoint fills the edit form with an endpoint's settings; custom
// header values are masked (kinehook.MaskHeaderValue), and a value left as
// shown keeps the stored one.
func formFromEndpoint(e *kinehook.Endpoint) *endpointForm {
	f := &endpointForm{URL: e.URL, Description: e.Description, EventTypes: slices.Clone(e.EventTypes), Managed: kinehook.IsOperationsEndpoint(e.ID)}
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\n", k, kinehook.MaskHeaderValue(e.Headers[k]))
	}
	f.Headers = b.String()
	if e.RateLimit > 0 {
		f.RateLimit = strconv.FormatFloat(e.RateLimit, 'f', -1, 64)
	}
	if e.MaxInFlight > 0 {
		f.MaxInFlight = strconv.Itoa(e.MaxInFlight)
	}
	f.fillChoices()
	return f
}

// parseEndpointForm reads and validates the form into e; it returns the form
// (with Errors set when invalid).
func (h *Handler) parseEndpointForm(r *http.Request, e *kinehook.Endpoint) (*endpointForm, bool) {
	pf := r.PostForm
	f := &endpointForm{
		URL:         strings.TrimSpace(pf.Get("url")),
		Description: strings.TrimSpace(pf.Get("description")),
		EventTypes:  pf["event_types"],
		Headers:     pf.Get("headers"),
		RateLimit:   strings.TrimSpace(pf.Get("rate_limit")),
		MaxInFlight: strings.TrimSpace(pf.Get("max_in_flight")),
		Errors:      map[string]string{},
		Managed:     e != nil && kinehook.IsOperationsEndpoint(e.ID),
	}
	f.fillChoices()
	if err := kinehook.ValidateEndpointURL(f.URL); err != nil {
		f.Errors["url"] = kinehook.ErrorMessage(err)
	} else if h.cfg.CheckURL != nil {
		if err := h.cfg.CheckURL(f.URL); err != nil {
			f.Errors["url"] = kinehook.ErrorMessage(err)
		}
	}
	types := make([]string, 0, min(len(f.EventTypes), kinehook.MaxEventTypeFilters+1))
	for _, t := range f.EventTypes {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	types, err := kinehook.NormalizeEventTypeFilter(types)
	if err != nil {
		f.Errors["event_types"] = kinehook.ErrorMessage(err)
		// The form comes back with each value once, not all that were posted.
		f.EventTypes = slices.DeleteFunc(uniq(f.EventTypes), func(v string) bool { return len(v) > kinehook.MaxEventTypeLength })
		f.EventTypes = f.EventTypes[:min(len(f.EventTypes), kinehook.MaxEventTypeFilters)]
		f.fillChoices()
	}
	if len(f.Description) > 1000 {
		f.Errors["description"] = "The description is longer than 1000 characters."
	}
	headers, err := parseHeaders(f.Headers)
	if err != nil {
		f.Errors["headers"] = err.Error()
	}
	var rate float64
	if f.RateLimit != "" {
		rate, err = strconv.ParseFloat(f.RateLimit, 64)
		if err != nil || rate < 0 || rate > 1e6 || rate != rate {
			f.Errors["rate_limit"] = "Enter deliveries per second as a number from 0 (unlimited) to 1000000."
		}
	}
	var inflight int
	if f.MaxInFlight != "" {
		inflight, err = strconv.Atoi(f.MaxInFlight)
		if err != nil || inflight < 0 || inflight > 10000 {
			f.Errors["max_in_flight"] = "Enter a whole number from 0 (server default) to 10000."
		}
	}
	if len(f.Errors) > 0 {
		return f, false
	}
	e.URL = f.URL
	e.Description = f.Description
	e.EventTypes = types
	// A value left masked, as the edit form shows it, keeps the stored value.
	e.Headers = kinehook.KeepMaskedHeaders(headers, e.Headers)
	e.RateLimit = rate
	e.MaxInFlight = inflight
	return f, true
}

// uniq returns vs without repeats, in first-seen order.
func uniq(vs []string) []string {
	seen := make(map[string]bool, len(vs))
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok {
			return nil, fmt.Errorf("line %d: write each header as \"Name: value\"", i+1)
		}
		if err := kinehook.ValidateEndpointHeader(name, value); err != nil {
			return nil, fmt.Errorf("line %d: %s", i+1, kinehook.ErrorMessage(err))
		}
		out[name] = value
	}
	if len(out) > kinehook.MaxEndpointHeaders {
		return nil, fmt.Errorf("at most %d headers", kinehook.MaxEndpointHeaders)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// endpointRow is one endpoint on the list with its health.
type endpointRow struct {
	E      *kinehook.Endpoint
	Health *health
}

type endpointListPage struct {
	Rows   []endpointRow
	Window int
}

func (h *Handler) endpointList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	live := h.liveSrc(r.Context(), rc, "")
	eps, err := h.store.ListEndpoints(r.Context(), rc.project.ID)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list endpoints: %w", err))
		return
	}
	hs, err := h.projectHealth(r.Context(), rc.project.ID)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	rows := make([]endpointRow, 0, len(eps))
	for _, e := range eps {
		hl := hs[e.ID]
		if hl == nil {
			hl = &health{}
		}
		rows = append(rows, endpointRow{E: e, Health: hl})
	}
	h.render(w, r, http.StatusOK, "endpoints", &pageData{
		Session: rc.s, Title: "Endpoints", Project: rc.project, Base: rc.base, Nav: "endpoints",
		LiveSrc: live, Page: &endpointListPage{Rows: rows, Window: h.cfg.HealthWindow},
	})
}

func (h *Handler) endpointNew(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := &endpointForm{}
	f.fillChoices()
	h.render(w, r, http.StatusOK, "endpoint_new", &pageData{
		Session: rc.s, Title: "New endpoint", Project: rc.project, Base: rc.base, Nav: "endpoints", Page: f,
	})
}

func (h *Handler) endpointCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	now := h.now().UTC()
	sec, err := kinehook.NewEndpointSecret(kinehook.SchemeV1)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	e := &kinehook.Endpoint{
		ID:        kinehook.NewID(kinehook.PrefixEndpoint),
		ProjectID: rc.project.ID,
		Secrets:   []kinehook.EndpointSecret{{Value: sec}},
		Scheme:    kinehook.SchemeV1,
		CreatedAt: now,
		UpdatedAt: now,
	}
	f, ok := h.parseEndpointForm(r, e)
	if !ok {
		h.render(w, r, http.StatusUnprocessableEntity, "endpoint_new", &pageData{
			Session: rc.s, Title: "New endpoint", Project: rc.project, Base: rc.base, Nav: "endpoints", Page: f,
			Flashes: []flash{{Kind: "error", Text: "The endpoint was not created: please correct the fields marked below."}},
		})
		return
	}
	if err := h.store.CreateEndpoint(r.Context(), e); err != nil {
		h.internalError(w, r, fmt.Errorf("create endpoint: %w", err))
		return
	}
	h.disp.EndpointChanged(r.Context(), rc.project.ID, e.ID)
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID+"?reveal=1", "ok", "Endpoint created. Its signing secret is shown below; give it to the receiver.")
}

// loadEndpoint fetches the endpoint named in the path, rendering 404 itself.
func (h *Handler) loadEndpoint(w http.ResponseWriter, r *http.Request, rc *reqCtx) *kinehook.Endpoint {
	e, err := h.store.GetEndpoint(r.Context(), rc.project.ID, r.PathValue("eid"))
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		h.renderError(w, r, http.StatusNotFound, "There is no such endpoint in this project.")
		return nil
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("get endpoint: %w", err))
		return nil
	}
	return e
}

// endpointPage is the endpoint detail page: settings form, health, secret
// and actions.
type endpointPage struct {
	E              *kinehook.Endpoint
	Health         *health
	Form           *endpointForm
	Reveal         bool
	Secret         string
	PublicKey      string // for v1a (ed25519) endpoints: what receivers verify with
	OldSecrets     []kinehook.EndpointSecret
	TestTypes      []kinehook.EventType
	RecoverSince   string
	RecoverError   string
	TestError      string
	RecentFailures []*kinehook.Delivery
}

func (h *Handler) endpointPageData(r *http.Request, rc *reqCtx, e *kinehook.Endpoint, f *endpointForm) (*pageData, error) {
	live := h.liveSrc(r.Context(), rc, "")
	hs, err := h.projectHealth(r.Context(), rc.project.ID)
	if err != nil {
		return nil, err
	}
	hl := hs[e.ID]
	if hl == nil {
		hl = &health{}
	}
	if f == nil {
		f = formFromEndpoint(e)
	}
	p := &endpointPage{E: e, Health: hl, Form: f, Reveal: r.URL.Query().Get("reveal") == "1",
		RecoverSince: h.now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:04")}
	now := h.now()
	if len(e.Secrets) > 0 {
		p.Secret = e.Secrets[0].Value
		if e.Scheme == kinehook.SchemeV1a && p.Reveal {
			if pub, err := kinehook.PublicKeyOf(p.Secret); err == nil {
				p.PublicKey = pub
			}
		}
		for _, s := range e.Secrets[1:] {
			if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
				p.OldSecrets = append(p.OldSecrets, s)
			}
		}
	}
	for _, t := range kinehook.EventTypes {
		if e.Matches(t) {
			p.TestTypes = append(p.TestTypes, t)
		}
	}
	return &pageData{Session: rc.s, Title: "Endpoint " + e.URL, Project: rc.project, Base: rc.base, Nav: "endpoints",
		LiveSrc: live, Page: p}, nil
}

func (h *Handler) endpointShow(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	d, err := h.endpointPageData(r, rc, e, nil)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "endpoint", d)
}

// endpointUpdate saves the edit form; fields the form does not show
// (secrets, Basic Auth, Kinescope name) are kept.
func (h *Handler) endpointUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	orig := *e
	prev := e.UpdatedAt
	f, ok := h.parseEndpointForm(r, e)
	if !ok {
		d, err := h.endpointPageData(r, rc, &orig, f)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		d.Flashes = append(d.Flashes, flash{Kind: "error", Text: "The changes were not saved: please correct the fields marked below."})
		h.render(w, r, http.StatusUnprocessableEntity, "endpoint", d)
		return
	}
	if kinehook.IsOperationsEndpoint(e.ID) && (e.URL != orig.URL || !slices.Equal(e.EventTypes, orig.EventTypes)) {
		h.renderError(w, r, http.StatusConflict, "This endpoint is made by the project's operations URL: change that setting to move it. Its URL and event types are not edited here.")
		return
	}
	e.UpdatedAt = h.now().UTC()
	if !h.saveEndpoint(w, r, rc, e, prev) {
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID, "ok", "Endpoint saved.")
}

// saveEndpoint writes e, read when its UpdatedAt was prev, and tells the
// engine; false means an error page was rendered. A change made since the
// read (the delivery engine disabling the endpoint, another tab) is not
// overwritten: the page asks to reload instead.
func (h *Handler) saveEndpoint(w http.ResponseWriter, r *http.Request, rc *reqCtx, e *kinehook.Endpoint, prev time.Time) bool {
	if !e.UpdatedAt.After(prev) {
		e.UpdatedAt = prev.Add(time.Microsecond)
	}
	err := h.store.UpdateEndpointIfUnchanged(r.Context(), e, prev)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		h.renderError(w, r, http.StatusNotFound, "There is no such endpoint in this project.")
		return false
	}
	if kinehook.ErrorCode(err) == kinehook.ECONFLICT {
		h.renderError(w, r, http.StatusConflict, "This endpoint changed while you were saving (the delivery engine may have disabled it). Nothing was saved: open it again and repeat the change.")
		return false
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("update endpoint: %w", err))
		return false
	}
	h.disp.EndpointChanged(r.Context(), rc.project.ID, e.ID)
	return true
}

func (h *Handler) endpointSetDisabled(disabled bool) func(http.ResponseWriter, *http.Request, *reqCtx) {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		e := h.loadEndpoint(w, r, rc)
		if e == nil {
			return
		}
		// rc.project was read for this request.
		if !disabled && kinehook.IsOperationsEndpoint(e.ID) && rc.project.OperationsURL == "" {
			h.renderError(w, r, http.StatusConflict, "The project's operations URL is not set: set it again (API or kinehook projects update --operations-url) to enable this endpoint.")
			return
		}
		prev := e.UpdatedAt
		e.Disabled = disabled
		msg := "Endpoint enabled: new events reach it again."
		e.DisabledReason = ""
		if disabled {
			e.DisabledReason = "disabled in the dashboard"
			msg = "Endpoint disabled: new events are not delivered to it."
		} else {
			e.FailingSince = time.Time{}
		}
		e.UpdatedAt = h.now().UTC()
		if !h.saveEndpoint(w, r, rc, e, prev) {
			return
		}
		h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID, "ok", msg)
	}
}

// endpointRotate makes a new current secret; the previous one keeps signing
// for kinehook.SecretGracePeriod, older ones are dropped.
func (h *Handler) endpointRotate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	prev := e.UpdatedAt
	now := h.now().UTC()
	sec, err := kinehook.NewEndpointSecret(e.Scheme)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	secrets := []kinehook.EndpointSecret{{Value: sec}}
	if len(e.Secrets) > 0 {
		secrets = append(secrets, kinehook.EndpointSecret{Value: e.Secrets[0].Value, ExpiresAt: now.Add(kinehook.SecretGracePeriod)})
	}
	e.Secrets = secrets
	e.UpdatedAt = now
	if !h.saveEndpoint(w, r, rc, e, prev) {
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID+"?reveal=1", "ok",
		"Secret rotated. The previous secret keeps signing beside the new one until "+now.Add(kinehook.SecretGracePeriod).Format("2006-01-02 15:04 UTC")+".")
}

// endpointTest publishes a sample event of the chosen type. It is a real
// event of the project, so every endpoint whose filter selects the type gets it.
func (h *Handler) endpointTest(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	back := rc.base + "/endpoints/" + e.ID
	t := kinehook.EventType(r.PostForm.Get("type"))
	if !t.Known() {
		h.redirectFlash(w, r, rc.s, back, "error", fmt.Sprintf("Choose an event type from the catalog (got %q).", t))
		return
	}
	if !e.Matches(t) {
		h.redirectFlash(w, r, rc.s, back, "error", fmt.Sprintf("This endpoint's filter does not select %s, so a test event would not reach it.", t))
		return
	}
	if e.Disabled {
		h.redirectFlash(w, r, rc.s, back, "error", "This endpoint is disabled; enable it before sending a test event.")
		return
	}
	ev, err := sampleEvent(rc.project.ID, t, h.now())
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	res, err := h.disp.Publish(r.Context(), ev)
	if err != nil {
		if code := kinehook.ErrorCode(err); code != kinehook.EINTERNAL {
			h.redirectFlash(w, r, rc.s, back, "error", "The test event was refused: "+kinehook.ErrorMessage(err))
			return
		}
		h.internalError(w, r, fmt.Errorf("publish test event: %w", err))
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/events/"+res.Event.ID, "ok",
		fmt.Sprintf("Test event %s sent to %d endpoint(s). Its deliveries appear below as they happen.", t, len(res.Deliveries)))
}

// parseSince reads a time typed in a datetime-local input (taken as UTC) or RFC 3339.
func parseSince(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date and time such as 2026-01-31T14:05", s)
}

func (h *Handler) endpointRecover(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	back := rc.base + "/endpoints/" + e.ID
	since, err := parseSince(r.PostForm.Get("since"))
	if err != nil {
		h.redirectFlash(w, r, rc.s, back, "error", "Nothing was recovered: "+err.Error()+".")
		return
	}
	if since.After(h.now()) {
		h.redirectFlash(w, r, rc.s, back, "error", "Nothing was recovered: the time is in the future.")
		return
	}
	n, err := h.disp.Recover(r.Context(), rc.project.ID, e.ID, since)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("recover: %w", err))
		return
	}
	h.redirectFlash(w, r, rc.s, back, "ok", fmt.Sprintf("%d failed deliveries since %s are being sent again.", n, since.Format("2006-01-02 15:04 UTC")))
}

func (h *Handler) endpointDelete(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	if kinehook.IsOperationsEndpoint(e.ID) {
		h.renderError(w, r, http.StatusConflict, "This endpoint is made by the project's operations URL and stays with the project: clearing that setting disables it.")
		return
	}
	if err := h.store.DeleteEndpoint(r.Context(), rc.project.ID, e.ID); err != nil {
		h.internalError(w, r, fmt.Errorf("delete endpoint: %w", err))
		return
	}
	h.disp.EndpointChanged(r.Context(), rc.project.ID, e.ID)
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints", "ok", "Endpoint "+e.URL+" deleted.")
}

// urlQueryEscape escapes s for a query value.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }
