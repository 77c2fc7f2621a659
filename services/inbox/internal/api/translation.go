package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/translate"
)

// Translation ([002], ADR 20): a tenant's translator, translations of
// customer messages on demand, and replies sent translated (see reply).

func (a *API) registerTranslation(r Router) {
	a.handle(r, "GET /v1/admin/settings/translation", a.getTranslationSettings)
	a.handle(r, "PUT /v1/admin/settings/translation", a.putTranslationSettings)
	a.handle(r, "POST /v1/messages/{id}/translate", a.translateMessage)
}

// TranslationSettingsRequest is the body of PUT
// /v1/admin/settings/translation.
type TranslationSettingsRequest struct {
	// Enabled is required: absent is not false.
	Enabled *bool `json:"enabled"`
	// Provider is libretranslate (the default).
	Provider string `json:"provider,omitempty"`
	URL      string `json:"url,omitempty"`
	// APIKey is write-only: absent keeps the key stored, "" removes it.
	APIKey *string `json:"api_key,omitempty"`
}

// maxAPIKeyBytes bounds a translator's API key.
const maxAPIKeyBytes = 1000

func (a *API) getTranslationSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	set, err := a.Store.GetTranslationSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, set)
}

func (a *API) putTranslationSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in TranslationSettingsRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Enabled == nil {
		return domain.Invalid("enabled", "is required: true or false")
	}
	set := store.TranslationSettings{Enabled: *in.Enabled, Provider: in.Provider, URL: in.URL}
	if set.Provider == "" {
		set.Provider = translate.ProviderLibreTranslate
	}
	if _, err := translate.New(translate.Settings{Provider: set.Provider}, nil); err != nil {
		return domain.Invalid("provider", "must be one of "+strings.Join(translate.Providers(), ", "))
	}
	if set.URL != "" || set.Enabled {
		if strings.TrimSpace(set.URL) == "" {
			return domain.Invalid("url", "is required to enable translation: the translator's https URL, such as https://translate.example.com")
		}
		if err := a.checkURL("url", set.URL); err != nil {
			return err
		}
	}
	if in.APIKey != nil {
		if err := checkText("api_key", *in.APIKey, false, maxAPIKeyBytes); err != nil {
			return err
		}
		if strings.ContainsAny(*in.APIKey, "\r\n") {
			return domain.Invalid("api_key", "must be one line")
		}
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.TranslationSettings, error) {
		return a.Store.PutTranslationSettings(r.Context(), tx, tenant, set, in.APIKey, a.Clock.Now())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}

// TranslateRequest is the body of POST /v1/messages/{id}/translate.
type TranslateRequest struct {
	// To is the language to translate into, an ISO 639-1 code.
	To string `json:"to"`
}

// translateMessage queues the translation of a message the principal may
// see into the language asked; it answers 202 with the message, whose
// translation is pending until the worker is done (announced on the
// stream).
func (a *API) translateMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	var in TranslateRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if !a.Languages.Valid(in.To) {
		return domain.Invalid("to", "must be an ISO 639-1 code, such as en")
	}
	m, err := a.Store.GetMessage(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	c, err := a.Store.GetConversation(r.Context(), tenant, m.ConversationID)
	if err != nil {
		return err
	}
	if !c.VisibleTo(p) {
		return domain.ErrNotFound
	}
	if m.AnonymisedAt != nil || strings.TrimSpace(m.Body) == "" {
		return fmt.Errorf("%w: the message has no text to translate", domain.ErrConflict)
	}
	set, err := a.Store.GetTranslationSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	if err := translationOn(set); err != nil {
		return err
	}
	source := m.Language
	if source == in.To {
		return domain.Invalid("to", "is the message's own language")
	}
	out, err := a.Store.RequestTranslation(r.Context(), tenant, id, source, in.To, p.ActorID(), a.Clock.Now())
	if err != nil {
		return err
	}
	if a.WakeTranslations != nil {
		a.WakeTranslations()
	}
	httpx.WriteJSON(w, http.StatusAccepted, out)
	return nil
}

// translationOn refuses when the tenant's translation is off.
func translationOn(set store.TranslationSettings) error {
	if !set.Enabled {
		return fmt.Errorf("%w: translation is turned off for this tenant: an admin turns it on with PUT /v1/admin/settings/translation", domain.ErrConflict)
	}
	return nil
}

// Values of ReplyRequest.Fallback.
const FallbackOriginal = "original"

// checkReplyTranslation checks the translation fields of a reply.
func (a *API) checkReplyTranslation(in ReplyRequest) error {
	if in.Translate && in.TranslateTo != "" {
		return domain.Invalid("translate", "give translate (into the customer's language) or translate_to, not both")
	}
	if in.TranslateTo != "" && !a.Languages.Valid(in.TranslateTo) {
		return domain.Invalid("translate_to", "must be an ISO 639-1 code, such as de")
	}
	switch in.Fallback {
	case "":
	case FallbackOriginal:
		if !in.Translate && in.TranslateTo == "" {
			return domain.Invalid("fallback", "applies to a reply sent translated (translate or translate_to)")
		}
	default:
		return domain.Invalid("fallback", "must be original (send the reply as written when the translator fails) or absent (refuse the reply)")
	}
	return nil
}

// translateReply translates the reply d asks to translate, before any
// transaction: the translator is called with the short reply timeout. On
// success d's text is the translation and d keeps the original; on
// failure the reply is refused (503 naming the translator) unless d asks
// to fall back to the original, which is then sent as written with a
// failed translation.
func (a *API) translateReply(ctx context.Context, p domain.Principal, r *http.Request, d *replyDraft) error {
	in := d.in
	if !in.Translate && in.TranslateTo == "" {
		return nil
	}
	c, err := a.visible(ctx, p, r)
	if err != nil {
		return err
	}
	// Refused replies call no translator.
	if err := domain.Reply(p, c.Domain()); err != nil {
		return err
	}
	set, err := a.Store.GetTranslationSettings(ctx, c.Tenant)
	if err != nil {
		return err
	}
	if err := translationOn(set); err != nil {
		return err
	}
	target := in.TranslateTo
	if target == "" {
		target = c.Language
		if target == "" {
			return domain.Invalid("translate", "the customer's language is not known yet: name it with translate_to")
		}
	}
	source := a.Languages.Detect(in.Text)
	if source == target {
		// Written in the customer's language already: sent as is.
		return nil
	}
	tr := &store.Translation{SourceLanguage: source, TargetLanguage: target, Original: in.Text, RequestedBy: p.ActorID()}
	t, err := translate.New(translate.Settings{Provider: set.Provider, URL: set.URL, APIKey: set.APIKey}, a.TranslationClient)
	if err == nil {
		tctx, cancel := context.WithTimeout(ctx, a.Translation.ReplyTimeout)
		var res translate.Result
		res, err = t.Translate(tctx, in.Text, source, target)
		cancel()
		if err == nil {
			if err := checkText("text", res.Text, true, events.MaxTextBytes); err != nil {
				err = &translate.Error{Reason: "the translator's answer is empty or too long", Permanent: true}
			} else {
				tr.State, tr.Text = store.TranslationDone, res.Text
				if tr.SourceLanguage == "" {
					tr.SourceLanguage = res.Source
				}
				d.in.Text, d.translation = res.Text, tr
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reason := translate.Reason(err)
	a.Log.InfoContext(ctx, "reply translation failed", "conversation", c.ID, "error", err)
	if in.Fallback != FallbackOriginal {
		return &httpx.Problem{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("the translator could not translate the reply (%s): nothing was sent; send it again, or with \"fallback\": \"original\" to send it as written", reason),
			Extra:  map[string]any{"translator": set.Provider, "reason": reason}}
	}
	tr.State, tr.Error, tr.Original = store.TranslationFailed, reason, ""
	d.translation = tr
	return nil
}

// replyResult is the answer to a reply: the conversation, and the reply
// as stored (with its translation when it was sent translated).
type replyResult struct {
	store.Conversation
	Message *store.Message `json:"message,omitempty"`
}
