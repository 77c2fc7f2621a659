package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The chat channel routes: a tenant's chat front ends and bot platforms.
// Each channel has an inbound secret, which signs the webhooks the
// platform posts, and may have an outbound endpoint, where the chat
// connector delivers agents' replies, bot commands and state changes,
// signed with the outbound secret. Secrets are made here, never entered,
// and shown once: in the answer that made them. A rotation makes a new
// secret and keeps the previous one valid until it is finished. Every
// route needs manage_settings; every change is announced to the chat
// connector.

func (a *API) registerChatChannels(r Router) {
	const base = "/v1/admin/chat-channels"
	a.handle(r, "GET "+base, a.listChatChannels)
	a.handle(r, "POST "+base, a.createChatChannel)
	a.handle(r, "GET "+base+"/{id}", a.getChatChannel)
	a.handle(r, "PATCH "+base+"/{id}", a.updateChatChannel)
	a.handle(r, "DELETE "+base+"/{id}", a.deleteChatChannel)
	a.handle(r, "POST "+base+"/{id}/rotate-secret", a.rotateChatSecret)
}

// ChatOutboundRequest is a chat channel's endpoint in the body of POST
// /v1/admin/chat-channels. Events default to DefaultChatEvents.
type ChatOutboundRequest struct {
	URL      string   `json:"url"`
	Events   []string `json:"events,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
}

// ChatChannelRequest is the body of POST /v1/admin/chat-channels.
type ChatChannelRequest struct {
	Name     string               `json:"name"`
	Outbound *ChatOutboundRequest `json:"outbound,omitempty"`
}

// ChatOutboundUpdate changes a chat channel's endpoint: absent fields stay
// as they are. A channel without one gets one, which needs url.
type ChatOutboundUpdate struct {
	URL      *string   `json:"url,omitempty"`
	Events   *[]string `json:"events,omitempty"`
	Disabled *bool     `json:"disabled,omitempty"`
}

// ChatChannelUpdate is the body of PATCH /v1/admin/chat-channels/{id}:
// absent fields stay as they are; outbound null removes the endpoint.
type ChatChannelUpdate struct {
	Name *string `json:"name,omitempty"`
	// Outbound is a ChatOutboundUpdate, or null.
	Outbound json.RawMessage `json:"outbound,omitempty"`
}

// RotateSecretRequest is the body of POST
// /v1/admin/chat-channels/{id}/rotate-secret.
type RotateSecretRequest struct {
	// Which is inbound or outbound.
	Which string `json:"which"`
	// Finish drops the previous secret instead of making a new one.
	Finish bool `json:"finish,omitempty"`
}

// Secrets a rotation may change.
const (
	SecretInbound  = "inbound"
	SecretOutbound = "outbound"
)

// DefaultChatEvents are what an endpoint receives when it names none: the
// replies, which are what an endpoint is for.
func DefaultChatEvents() []string { return []string{events.ChatEventMessage} }

// checkURL checks a tenant-entered URL against the operator's egress
// policy (https, no user information, no address inside the network
// unless allowed), naming field.
func (a *API) checkURL(field, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return domain.Invalid(field, "is required: the https URL deliveries are posted to")
	}
	if err := a.Egress.ValidateURL(raw); err != nil {
		var ue *egress.URLError
		if errors.As(err, &ue) {
			return domain.Invalid(field, ue.Reason)
		}
		return domain.Invalid(field, err.Error())
	}
	return nil
}

// decodeNested reads raw, the value of the body's field, strictly into v;
// the fields an error names are given their path from the body.
func decodeNested(field string, raw json.RawMessage, v any) error {
	err := httpx.DecodeJSONBytes(bytes.NewReader(raw), v)
	var prob *httpx.Problem
	if err == nil || !errors.As(err, &prob) || len(prob.Errors) == 0 {
		return err
	}
	e := prob.Errors[0]
	name := field
	if e.Field != "body" {
		name += "." + e.Field
	}
	return domain.Invalid(name, e.Reason)
}

func (a *API) listChatChannels(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListChatChannels, func(c store.ChatChannelInfo) store.Position {
		return store.Position{At: c.CreatedAt, ID: c.ID}
	})
}

func (a *API) getChatChannel(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	c, err := a.Store.GetChatChannel(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, c)
}

// createChatChannel answers with the new secrets, this once.
func (a *API) createChatChannel(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in ChatChannelRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := store.CheckName("name", in.Name); err != nil {
		return err
	}
	secret, err := store.NewChatSecret(false)
	if err != nil {
		return err
	}
	spec := store.ChatChannelSpec{Name: in.Name, Secrets: []string{secret}}
	if o := in.Outbound; o != nil {
		if err := a.checkURL("outbound.url", o.URL); err != nil {
			return err
		}
		secret, err := store.NewChatSecret(true)
		if err != nil {
			return err
		}
		evs := o.Events
		if evs == nil {
			evs = DefaultChatEvents()
		}
		spec.Outbound = &events.ChatOutbound{URL: o.URL, Events: evs, Secrets: []string{secret}, Disabled: o.Disabled}
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	c, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.ChatChannelInfo, error) {
		return a.Store.CreateChatChannelFrom(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, c)
}

// updateChatChannel answers with the outbound secret when the change gave
// the channel its endpoint, this once.
func (a *API) updateChatChannel(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in ChatChannelUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil && in.Outbound == nil {
		return domain.Invalid("body", "names nothing to change")
	}
	if in.Name != nil {
		if err := store.CheckName("name", *in.Name); err != nil {
			return err
		}
	}
	var (
		remove bool
		out    *ChatOutboundUpdate
	)
	if in.Outbound != nil {
		if string(bytes.TrimSpace(in.Outbound)) == "null" {
			remove = true
		} else {
			out = &ChatOutboundUpdate{}
			if err := decodeNested("outbound", in.Outbound, out); err != nil {
				return err
			}
			if *out == (ChatOutboundUpdate{}) {
				return domain.Invalid("outbound", "names nothing to change; null removes the endpoint")
			}
			if out.URL != nil {
				if err := a.checkURL("outbound.url", *out.URL); err != nil {
					return err
				}
			}
		}
	}
	c, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.ChatChannelInfo, error) {
		return a.Store.UpdateChatChannel(r.Context(), tx, tenant, id, a.settingsNow(), func(spec *store.ChatChannelSpec) (string, string, error) {
			set(&spec.Name, in.Name)
			if remove {
				spec.Outbound = nil
			}
			if out == nil {
				return "", "", nil
			}
			var made string
			if spec.Outbound == nil {
				if out.URL == nil {
					return "", "", domain.Invalid("outbound.url", "is required: the channel has no endpoint yet")
				}
				secret, err := store.NewChatSecret(true)
				if err != nil {
					return "", "", err
				}
				spec.Outbound = &events.ChatOutbound{Events: DefaultChatEvents(), Secrets: []string{secret}}
				made = secret
			}
			set(&spec.Outbound.URL, out.URL)
			set(&spec.Outbound.Events, out.Events)
			set(&spec.Outbound.Disabled, out.Disabled)
			return "", made, nil
		})
	})
	if err != nil {
		return err
	}
	return ok(w, c)
}

// deleteChatChannel stops the channel: its webhooks are refused and
// nothing more is delivered. Its conversations stay.
func (a *API) deleteChatChannel(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteChatChannel(r.Context(), tx, tenant, id, a.settingsNow())
	})
}

// rotateChatSecret makes a new secret of a kind and keeps the previous one
// valid (answering with the new one, this once); finish drops the
// previous one. A second rotation before the first is finished, or a
// finish without a rotation, is a conflict (409): the first would drop a
// secret still in use.
func (a *API) rotateChatSecret(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in RotateSecretRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	outbound := false
	switch in.Which {
	case SecretInbound:
	case SecretOutbound:
		outbound = true
	default:
		return domain.Invalid("which", "must be inbound or outbound")
	}
	var made string
	if !in.Finish {
		if made, err = store.NewChatSecret(outbound); err != nil {
			return err
		}
	}
	c, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.ChatChannelInfo, error) {
		return a.Store.UpdateChatChannel(r.Context(), tx, tenant, id, a.settingsNow(), func(spec *store.ChatChannelSpec) (string, string, error) {
			secrets := &spec.Secrets
			if outbound {
				if spec.Outbound == nil {
					return "", "", fmt.Errorf("%w: the channel has no outbound endpoint, hence no outbound secret; set one (PATCH outbound)", domain.ErrConflict)
				}
				secrets = &spec.Outbound.Secrets
			}
			if in.Finish {
				if len(*secrets) < 2 {
					return "", "", fmt.Errorf("%w: no rotation of the %s secret is under way", domain.ErrConflict, in.Which)
				}
				*secrets = (*secrets)[:1]
				return "", "", nil
			}
			if len(*secrets) >= store.MaxChatSecrets {
				return "", "", fmt.Errorf("%w: a rotation of the %s secret is under way; finish it first (finish: true)", domain.ErrConflict, in.Which)
			}
			*secrets = append([]string{made}, (*secrets)...)
			if outbound {
				return "", made, nil
			}
			return made, "", nil
		})
	})
	if err != nil {
		return err
	}
	return ok(w, c)
}
