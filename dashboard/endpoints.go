package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// endpointForm is the create/edit form as typed, so a refused form comes
// back with the user's input and a message per field.
type endpointForm struct {
	// Type is the endpoint type chosen ("webhook" or a destination type);
	// Types the ones this server accepts, for the select.
	Type  string
	Types []string
	// Config is a destination's settings as JSON; Credentials its secrets
	// as "name: value" lines, stored values shown as "****" (kept when
	// left so; a line removed removes that credential).
	Config      string
	Credentials string
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
	// Portal: the customer portal's form (a webhook's URL, description,
	// event types among Offered, and headers only).
	Portal  bool
	Offered []string
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
	values := filterValues()
	if f.Portal {
		values = f.Offered
	}
	for _, v := range values {
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
		if !slices.Contains(values, v) {
			f.Choices = append(f.Choices, filterChoice{Value: v, Label: v, Checked: true})
		}
	}
}

// formFromEndpoint fills the edit form with an endpoint's settings; custom
// header values are masked (kinehook.MaskHeaderValue), and a value left as
// shown keeps the stored one.
func (h *Handler) formFromEndpoint(rc *reqCtx, e *kinehook.Endpoint) *endpointForm {
	f := &endpointForm{URL: e.URL, Description: e.Description, EventTypes: slices.Clone(e.EventTypes), Managed: kinehook.IsOperationsEndpoint(e.ID),
		Type: e.TypeOf(), Types: h.app.EndpointTypes(), Config: string(e.Config)}
	portalForm(rc, f)
	var cb strings.Builder
	for _, k := range kinehook.CredentialNames(e.Credentials) {
		fmt.Fprintf(&cb, "%s: %s\n", k, kinehook.MaskedCredential)
	}
	f.Credentials = cb.String()
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

// parseEndpointForm reads the form and checks it field by field with the
// app's rules (app.CheckURL, app.CheckDescription, ...), so that a refused
// form comes back with a message under every wrong field; it returns the
// form (with Errors set when invalid) and the change it asks for.
func (h *Handler) parseEndpointForm(r *http.Request, rc *reqCtx, managed bool, stored *kinehook.Endpoint) (*endpointForm, app.EndpointInput, bool) {
	pf := r.PostForm
	f := &endpointForm{
		Type:        strings.TrimSpace(pf.Get("type")),
		Types:       h.app.EndpointTypes(),
		Config:      strings.TrimSpace(pf.Get("config")),
		Credentials: pf.Get("credentials"),
		URL:         strings.TrimSpace(pf.Get("url")),
		Description: strings.TrimSpace(pf.Get("description")),
		EventTypes:  pf["event_types"],
		Headers:     pf.Get("headers"),
		RateLimit:   strings.TrimSpace(pf.Get("rate_limit")),
		MaxInFlight: strings.TrimSpace(pf.Get("max_in_flight")),
		Errors:      map[string]string{},
		Managed:     managed,
	}
	portalForm(rc, f)
	f.fillChoices()
	if f.Type == "" || managed {
		f.Type = kinehook.EndpointWebhook
	}
	webhook := f.Type == kinehook.EndpointWebhook
	if webhook {
		h.checkFormURL(f)
	}
	var creds map[string]string
	var config json.RawMessage
	if !webhook {
		config = json.RawMessage(f.Config)
		var err error
		if creds, err = parseCredentialLines(f.Credentials, stored); err != nil {
			f.Errors["credentials"] = err.Error()
		}
	}
	types := f.checkTypes()
	if err := app.CheckDescription(f.Description); err != nil {
		f.Errors["description"] = fmt.Sprintf("The description is longer than %d characters.", app.MaxDescription)
	}
	headers, err := parseHeaders(f.Headers)
	if err != nil {
		f.Errors["headers"] = err.Error()
	}
	rate, inflight := f.checkLimits()
	if len(f.Errors) > 0 {
		return f, app.EndpointInput{}, false
	}
	in := app.EndpointInput{Type: &f.Type, Description: &f.Description, EventTypes: &types,
		Headers: &headers, RateLimit: &rate, MaxInFlight: &inflight}
	if webhook {
		in.URL = &f.URL
	} else {
		// The URL field is hidden for a destination: what it may still hold is not sent.
		in.Config, in.Credentials = &config, &creds
	}
	return f, in, true
}

// parseCredentialLines reads a destination's "name: value" lines as the
// full set the endpoint is to have: a value left "****" keeps the stored
// one, and a stored name without a line is removed (the change is in
// kinehook.MergeCredentials' terms).
func parseCredentialLines(text string, stored *kinehook.Endpoint) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("line %d: write each credential as \"name: value\"", i+1)
		}
		out[name] = value
	}
	if err := kinehook.ValidateCredentials(out); err != nil {
		return nil, errors.New(kinehook.ErrorMessage(err))
	}
	if stored != nil {
		for k := range stored.Credentials {
			if _, ok := out[k]; !ok {
				out[k] = "" // removed from the list: removed
			}
		}
	}
	return out, nil
}

// portalForm makes f the customer portal's form when rc is a portal page:
// a webhook only, offering the session's event types.
func portalForm(rc *reqCtx, f *endpointForm) {
	if rc.portal == nil {
		return
	}
	f.Portal, f.Offered = true, rc.portal.FilterChoices()
	f.Type, f.Types = kinehook.EndpointWebhook, []string{kinehook.EndpointWebhook}
}

// checkFormURL checks the form's URL: the app's rules, then Config.CheckURL.
func (h *Handler) checkFormURL(f *endpointForm) {
	if err := h.app.CheckURL(f.URL, "url"); err != nil {
		f.Errors["url"] = kinehook.ErrorMessage(err)
	} else if h.cfg.CheckURL != nil {
		if err := h.cfg.CheckURL(f.URL); err != nil {
			f.Errors["url"] = kinehook.ErrorMessage(err)
		}
	}
}

// checkTypes returns the form's event-type filter, normalised.
func (f *endpointForm) checkTypes() []string {
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
	return types
}

// checkLimits reads the form's rate limit and in-flight bound (0 when empty).
func (f *endpointForm) checkLimits() (float64, int) {
	var rate float64
	if f.RateLimit != "" {
		var err error
		rate, err = strconv.ParseFloat(f.RateLimit, 64)
		if err != nil || app.CheckRateLimit(rate) != nil {
			f.Errors["rate_limit"] = fmt.Sprintf("Enter deliveries per second as a number from 0 (unlimited) to %d.", int(app.MaxRateLimit))
		}
	}
	var inflight int
	if f.MaxInFlight != "" {
		var err error
		inflight, err = strconv.Atoi(f.MaxInFlight)
		if err != nil || app.CheckMaxInFlight(inflight) != nil {
			f.Errors["max_in_flight"] = fmt.Sprintf("Enter a whole number from 0 (server default) to %d.", app.MaxInFlightCap)
		}
	}
	return rate, inflight
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
	// Badges are the breaker and pause badges, with their reasons.
	Badges []healthBadge
	// Target is where it delivers: the URL, or the destination's summary.
	Target string
}

type endpointListPage struct {
	Rows   []endpointRow
	Window int
	// Stats is the project's deliveries chart.
	Stats *statsView
}

func (h *Handler) endpointList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	live := h.liveSrc(r.Context(), rc, "")
	var eps []*kinehook.Endpoint
	var err error
	if rc.portal != nil {
		eps, err = h.app.PortalEndpoints(r.Context(), rc.portal)
	} else {
		eps, err = h.app.ListEndpoints(r.Context(), rc.project.ID)
	}
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
		rows = append(rows, endpointRow{E: e, Health: hl, Badges: healthBadges(e, h.now()), Target: h.app.DestinationSummary(e)})
	}
	var st *statsView
	if rc.portal == nil { // the project's chart counts every endpoint's deliveries
		if st, err = h.loadStats(r.Context(), rc.project.ID, "", r.URL.Query().Get("window"), rc.base+"/endpoints", "stats"); err != nil {
			h.internalError(w, r, err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "endpoints", &pageData{
		Session: rc.s, Title: "Endpoints", Project: rc.project, Base: rc.base, Nav: "endpoints",
		LiveSrc: live, Page: &endpointListPage{Rows: rows, Window: h.cfg.HealthWindow, Stats: st},
	})
}

func (h *Handler) endpointNew(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := &endpointForm{Type: kinehook.EndpointWebhook, Types: h.app.EndpointTypes()}
	portalForm(rc, f)
	f.fillChoices()
	h.render(w, r, http.StatusOK, "endpoint_new", &pageData{
		Session: rc.s, Title: "New endpoint", Project: rc.project, Base: rc.base, Nav: "endpoints", Page: f,
	})
}

func (h *Handler) endpointCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f, in, ok := h.parseEndpointForm(r, rc, false, nil)
	var e *kinehook.Endpoint
	if ok {
		var err error
		if rc.portal != nil {
			e, err = h.app.PortalCreateEndpoint(r.Context(), rc.portal, in)
		} else {
			e, err = h.app.CreateEndpoint(r.Context(), rc.project.ID, in)
		}
		if !formError(f, err) {
			if err != nil {
				h.internalError(w, r, fmt.Errorf("create endpoint: %w", err))
				return
			}
		}
	}
	if len(f.Errors) > 0 {
		h.render(w, r, http.StatusUnprocessableEntity, "endpoint_new", &pageData{
			Session: rc.s, Title: "New endpoint", Project: rc.project, Base: rc.base, Nav: "endpoints", Page: f,
			Flashes: []flash{{Kind: "error", Text: "The endpoint was not created: please correct the fields marked below."}},
		})
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID+"?reveal=1", "ok", "Endpoint created. Its signing secret is shown below; give it to the receiver.")
}

// formError puts an app's refusal of one field (EINVALID naming it) under
// that field of the form and reports whether it did.
func formError(f *endpointForm, err error) bool {
	var ke *kinehook.Error
	if !errors.As(err, &ke) || ke.Code != kinehook.EINVALID || ke.Field == "" {
		return false
	}
	field := ke.Field
	if strings.HasPrefix(field, "config.") {
		field = "config" // config.url, config.subject: under the config box
	}
	f.Errors[field] = ke.Message
	return true
}

// loadEndpoint fetches the endpoint named in the path, rendering 404 itself.
func (h *Handler) loadEndpoint(w http.ResponseWriter, r *http.Request, rc *reqCtx) *kinehook.Endpoint {
	var e *kinehook.Endpoint
	var err error
	if rc.portal != nil {
		e, err = h.app.PortalEndpoint(r.Context(), rc.portal, r.PathValue("eid"))
	} else {
		e, err = h.app.GetEndpoint(r.Context(), rc.project.ID, r.PathValue("eid"))
	}
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
	Target         string // the URL, or the destination's summary
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
	// Badges are the breaker and pause badges, with their reasons; Stats
	// the endpoint's deliveries chart.
	Badges []healthBadge
	Stats  *statsView
	// Log is the endpoint's delivery log (the search, filtered by the query).
	Log *deliveryLog
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
		f = h.formFromEndpoint(rc, e)
	}
	now := h.now()
	st, err := h.loadStats(r.Context(), rc.project.ID, e.ID, r.URL.Query().Get("window"), rc.base+"/endpoints/"+e.ID, "stats")
	if err != nil {
		return nil, err
	}
	p := &endpointPage{E: e, Target: h.app.DestinationSummary(e), Health: hl, Form: f, Reveal: r.URL.Query().Get("reveal") == "1",
		RecoverSince: now.UTC().Add(-24 * time.Hour).Format("2006-01-02 15:04"), Badges: healthBadges(e, now), Stats: st}
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
		if e.Matches(t) && (rc.portal == nil || rc.portal.AllowsType(t)) {
			p.TestTypes = append(p.TestTypes, t)
		}
	}
	if p.Log, err = h.loadDeliveryLog(r.Context(), rc, r.URL.Query(), e, rc.base+"/endpoints/"+e.ID); err != nil {
		return nil, fmt.Errorf("delivery log: %w", err)
	}
	return &pageData{Session: rc.s, Title: "Endpoint " + p.Target, Project: rc.project, Base: rc.base, Nav: "endpoints",
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
	f, in, ok := h.parseEndpointForm(r, rc, kinehook.IsOperationsEndpoint(e.ID), e)
	in.Seen = e.UpdatedAt
	var err error
	if ok {
		_, err = h.patchEndpoint(r.Context(), rc, e.ID, in)
		ok = !formError(f, err)
	}
	if !ok {
		d, err := h.endpointPageData(r, rc, e, f)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		d.Flashes = append(d.Flashes, flash{Kind: "error", Text: "The changes were not saved: please correct the fields marked below."})
		h.render(w, r, http.StatusUnprocessableEntity, "endpoint", d)
		return
	}
	if h.changeFailed(w, r, err) {
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID, "ok", "Endpoint saved.")
}

// patchEndpoint changes an endpoint through the app: the portal's use case
// in the customer portal.
func (h *Handler) patchEndpoint(ctx context.Context, rc *reqCtx, eid string, in app.EndpointInput) (*kinehook.Endpoint, error) {
	if rc.portal != nil {
		return h.app.PortalPatchEndpoint(ctx, rc.portal, eid, in)
	}
	return h.app.PatchEndpoint(ctx, rc.project.ID, eid, in)
}

// changeFailed renders the page for an endpoint change the app refused and
// reports whether there was one. A change made since the read (the delivery
// engine disabling the endpoint, another tab) is never overwritten: the
// page asks to repeat the change instead.
func (h *Handler) changeFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	var ke *kinehook.Error
	errors.As(err, &ke)
	switch {
	case err == nil:
		return false
	case kinehook.ErrorCode(err) == kinehook.ENOTFOUND:
		h.renderError(w, r, http.StatusNotFound, "There is no such endpoint in this project.")
	case kinehook.ErrorCode(err) != kinehook.ECONFLICT:
		h.internalError(w, r, fmt.Errorf("update endpoint: %w", err))
	case ke.Field == "url", ke.Field == "event_types":
		h.renderError(w, r, http.StatusConflict, "This endpoint is made by the project's operations URL: change that setting to move it. Its URL and event types are not edited here.")
	case ke.Field == "disabled":
		h.renderError(w, r, http.StatusConflict, "The project's operations URL is not set: set it again (API or kinehook projects update --operations-url) to enable this endpoint.")
	case ke.Field == "id":
		h.renderError(w, r, http.StatusConflict, "This endpoint is made by the project's operations URL and stays with the project: clearing that setting disables it.")
	default:
		h.renderError(w, r, http.StatusConflict, "This endpoint changed while you were saving (the delivery engine may have disabled it). Nothing was saved: open it again and repeat the change.")
	}
	return true
}

func (h *Handler) endpointSetDisabled(disabled bool) func(http.ResponseWriter, *http.Request, *reqCtx) {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		e := h.loadEndpoint(w, r, rc)
		if e == nil {
			return
		}
		in := app.EndpointInput{Disabled: &disabled, DisableReason: "disabled in the dashboard", Seen: e.UpdatedAt}
		if rc.portal != nil {
			in.DisableReason = "disabled in the customer portal"
		}
		_, err := h.patchEndpoint(r.Context(), rc, e.ID, in)
		if h.changeFailed(w, r, err) {
			return
		}
		msg := "Endpoint enabled: new events reach it again."
		if disabled {
			msg = "Endpoint disabled: new events are not delivered to it."
		}
		h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID, "ok", msg)
	}
}

// endpointRotate makes a new current secret; the previous one keeps signing
// for kinehook.SecretGracePeriod, older ones are dropped (app.RotateSecret).
func (h *Handler) endpointRotate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	var err error
	if rc.portal != nil {
		e, err = h.app.PortalRotateSecret(r.Context(), rc.portal, e.ID, e.UpdatedAt)
	} else {
		e, err = h.app.RotateSecret(r.Context(), rc.project.ID, e.ID, "", e.UpdatedAt)
	}
	if h.changeFailed(w, r, err) {
		return
	}
	msg := "Secret rotated."
	if exp := app.PreviousSecretExpiry(e, h.now()); !exp.IsZero() {
		msg += " The previous secret keeps signing beside the new one until " + exp.UTC().Format("2006-01-02 15:04 UTC") + "."
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+e.ID+"?reveal=1", "ok", msg)
}

// endpointTest publishes a sample event of the chosen type
// (app.SendTestEvent). It is a real event of the project, so every endpoint
// whose filter selects the type gets it.
func (h *Handler) endpointTest(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	back := rc.base + "/endpoints/" + e.ID
	t := kinehook.EventType(r.PostForm.Get("type"))
	if rc.portal != nil {
		h.portalTest(w, r, rc, e, t)
		return
	}
	res, err := h.app.SendTestEvent(r.Context(), rc.project.ID, e.ID, t)
	if err != nil {
		var ke *kinehook.Error
		errors.As(err, &ke)
		switch {
		case kinehook.ErrorCode(err) == kinehook.EINTERNAL:
			h.internalError(w, r, err)
		case ke.Field == app.FieldTestType:
			h.redirectFlash(w, r, rc.s, back, "error", fmt.Sprintf("Choose an event type from the catalog (got %q).", t))
		case ke.Field == app.FieldTestFilter:
			h.redirectFlash(w, r, rc.s, back, "error", fmt.Sprintf("This endpoint's filter does not select %s, so a test event would not reach it.", t))
		case ke.Field == app.FieldTestDisabled:
			h.redirectFlash(w, r, rc.s, back, "error", "This endpoint is disabled; enable it before sending a test event.")
		default:
			h.redirectFlash(w, r, rc.s, back, "error", "The test event was refused: "+kinehook.ErrorMessage(err))
		}
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/events/"+res.Event.ID, "ok",
		fmt.Sprintf("Test event %s sent to %d endpoint(s). Its deliveries appear below as they happen.", t, len(res.Deliveries)))
}

// Times typed in the dashboard are UTC, written as the inputs' placeholder
// shows (2026-12-03 13:00). The T form is what the datetime-local inputs
// used to send, and stays: such links were shared. The shapes are checked
// before time.Parse, which alone would take a one-digit hour.
var (
	utcInput     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$`)
	rfc3339Input = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:[0-5]\d)$`)
)

// timeHint ends every parseSince error: what to type instead.
const timeHint = "write YYYY-MM-DD HH:MM in UTC, such as 2026-12-03 13:00 (a date alone is 00:00)"

// parseSince reads a time typed in a filter or the recover form: YYYY-MM-DD,
// YYYY-MM-DD HH:MM[:SS], YYYY-MM-DDTHH:MM[:SS] (all UTC), or RFC 3339.
func parseSince(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	var err error
	switch {
	case rfc3339Input.MatchString(s):
		t, err = time.Parse(time.RFC3339Nano, s)
	case utcInput.MatchString(s):
		layout := "2006-01-02T15:04:05"[:min(len(s), 19)] // parsing takes a fraction after the seconds
		t, err = time.ParseInLocation(layout, strings.Replace(s, " ", "T", 1), time.UTC)
	case s == "":
		return time.Time{}, errors.New("no date and time given: " + timeHint)
	default:
		return time.Time{}, fmt.Errorf("%q is not a date and time: %s", s, timeHint)
	}
	if _, off := t.Zone(); err != nil || off <= -24*3600 || off >= 24*3600 { // time.Parse takes +24:00
		return time.Time{}, fmt.Errorf("%q is not a date and time that exists (months 01-12, days of the month, hours 00-23, minutes and seconds 00-59)", s)
	}
	return t, nil
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
	n, err := h.app.RecoverEndpoint(r.Context(), rc.project.ID, e.ID, since)
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
	del := h.app.DeleteEndpoint
	if rc.portal != nil {
		del = func(ctx context.Context, _, eid string) error { return h.app.PortalDeleteEndpoint(ctx, rc.portal, eid) }
	}
	if h.changeFailed(w, r, del(r.Context(), rc.project.ID, e.ID)) {
		return
	}
	h.redirectFlash(w, r, rc.s, rc.base+"/endpoints", "ok", "Endpoint "+e.URL+" deleted.")
}

// urlQueryEscape escapes s for a query value.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// choice pairs an endpoint with where it delivers, for people: its URL, or
// its destination's summary (a NATS subject, a listening CLI); no target
// when the endpoint is gone (nil).
func (h *Handler) choice(e *kinehook.Endpoint) endpointChoice {
	if e == nil {
		return endpointChoice{}
	}
	return endpointChoice{E: e, Target: h.app.DestinationSummary(e)}
}
