package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kinehook/kinehook"
)

// setDestinations indexes the wired destination types: each a known,
// non-webhook type, at most once.
func (a *App) setDestinations(ds []kinehook.DestinationType) error {
	a.dests = make(map[string]kinehook.DestinationType, len(ds))
	for _, d := range ds {
		t := d.Type()
		if t == kinehook.EndpointWebhook || !slices.Contains(kinehook.EndpointTypes, t) {
			return fmt.Errorf("app: destination type %q is not one of %v (webhook excluded)", t, kinehook.EndpointTypes[1:])
		}
		if a.dests[t] != nil {
			return fmt.Errorf("app: destination type %q given twice", t)
		}
		a.dests[t] = d
	}
	a.types = []string{kinehook.EndpointWebhook}
	for _, t := range kinehook.EndpointTypes[1:] {
		if a.dests[t] != nil {
			a.types = append(a.types, t)
		}
	}
	return nil
}

// EndpointTypes lists the endpoint types this server accepts: webhook, then
// the destination types it has a transport for.
func (a *App) EndpointTypes() []string { return slices.Clone(a.types) }

// Destination is the check of a wired destination type; nil for webhook or
// a type not wired.
func (a *App) Destination(typ string) kinehook.DestinationType { return a.dests[typ] }

// DestinationSummary is a one-line description of where e delivers: its URL
// for a webhook, its destination type's summary otherwise.
func (a *App) DestinationSummary(e *kinehook.Endpoint) string {
	switch e.TypeOf() {
	case kinehook.EndpointWebhook:
		return e.URL
	case kinehook.EndpointCLI:
		return listenerSummary(e)
	}
	if d := a.dests[e.TypeOf()]; d != nil {
		return d.Summary(e.Config)
	}
	return string(e.Config)
}

// applyType handles type, url, config and credentials together, since which
// of them an endpoint needs depends on its type:
//   - webhook (the default): url required; config and credentials refused.
//   - another wired type: config required and checked by the type's
//     DestinationType (422 on field config or credentials); a url is refused
//     (the broker's address is in config), and so are Basic Auth login and
//     password (a broker's own credentials are in credentials).
//
// Changing an endpoint's type clears what the old type used (url, login and
// password; config and credentials). Credentials given on an update are
// merged into the stored ones (kinehook.MergeCredentials: a value sets, ""
// removes, "****" keeps); the merged set is checked with the config.
func (a *App) applyType(e *kinehook.Endpoint, in *EndpointInput, creating bool) error {
	if e.TypeOf() == kinehook.EndpointCLI || (in.Type != nil && *in.Type == kinehook.EndpointCLI) {
		return applyListenerEndpoint(e, in, creating)
	}
	typ := e.TypeOf()
	if in.Type != nil {
		t := *in.Type
		if t == "" {
			t = kinehook.EndpointWebhook
		}
		if !slices.Contains(a.types, t) {
			msg := fmt.Sprintf("unknown endpoint type %q; expected one of %s", t, strings.Join(a.types, ", "))
			if slices.Contains(kinehook.EndpointTypes, t) {
				msg = fmt.Sprintf("endpoint type %q is not enabled on this server; expected one of %s", t, strings.Join(a.types, ", "))
			}
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: msg}
		}
		if t != typ && !creating {
			// What the old type used goes; the new type's fields are required below.
			e.URL, e.Login, e.Password, e.Config, e.Credentials = "", "", "", nil, nil
		}
		typ = t
	}
	changed := creating || typ != e.TypeOf()
	if typ == kinehook.EndpointWebhook {
		e.Type = ""
		switch {
		case in.Config != nil && len(*in.Config) > 0 && string(*in.Config) != "null":
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "config", Message: "a webhook endpoint takes no config: its address is url"}
		case in.Credentials != nil && len(*in.Credentials) > 0:
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "a webhook endpoint takes no credentials: use login and password (HTTP Basic Auth) or a custom header"}
		}
		return a.applyURL(e, in, changed)
	}
	e.Type = typ
	if in.URL != nil && *in.URL != "" {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "url", Message: fmt.Sprintf("a %s endpoint has no url: its broker's address is in config", typ)}
	}
	if (in.Login != nil && *in.Login != "") || (in.Password != nil && *in.Password != "") {
		field := "login"
		if in.Login == nil || *in.Login == "" {
			field = "password"
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: fmt.Sprintf("a %s endpoint takes no %s: give the broker's in credentials", typ, field)}
	}
	e.URL = ""
	config := e.Config
	if in.Config != nil {
		config = *in.Config
	}
	if len(config) == 0 || string(config) == "null" {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "config", Message: fmt.Sprintf("config is required for a %s endpoint", typ)}
	}
	creds := e.Credentials
	if in.Credentials != nil {
		if err := kinehook.ValidateCredentials(*in.Credentials); err != nil {
			return err
		}
		creds = kinehook.MergeCredentials(e.Credentials, *in.Credentials)
	}
	if !changed && in.Config == nil && in.Credentials == nil {
		return nil
	}
	d := a.dests[typ]
	if d == nil { // stored by a server that had this type: its settings cannot be checked here
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: fmt.Sprintf("endpoint type %q is not enabled on this server; expected one of %s", typ, strings.Join(a.types, ", "))}
	}
	norm, err := d.Normalize(config, creds)
	if err != nil {
		var ke *kinehook.Error
		if !errors.As(err, &ke) {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "config", Message: err.Error()}
		}
		return err
	}
	for _, h := range d.Hosts(norm) {
		if err := a.guard.CheckLiteralHost(h); err != nil {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "config", Message: "config: " + err.Error()}
		}
	}
	e.Config, e.Credentials = norm, creds
	return nil
}
