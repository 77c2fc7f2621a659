package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Help from others: help requests ([000] "Demander de l'aide", "Envoyer
// et demander de l'aide") and external agents ([003]). See
// docs/adr/0013-help-requests-and-external-agents.md.

func (a *API) registerHelp(r Router) {
	a.handle(r, "POST /v1/conversations/{id}/help-requests", a.askHelp)
	a.handle(r, "GET /v1/conversations/{id}/help-requests", a.listHelpRequests)
	a.handle(r, "POST /v1/conversations/{id}/help-requests/{request_id}/answer", a.answerHelp)
	a.handle(r, "POST /v1/conversations/{id}/external", a.sendExternal)
	a.handle(r, "POST /v1/conversations/{id}/external/return", a.returnExternal)
	a.handle(r, "GET /v1/admin/settings/help", a.getHelpSettings)
	a.handle(r, "PUT /v1/admin/settings/help", a.putHelpSettings)
}

// HelpRequestBody is the body of POST /v1/conversations/{id}/help-requests.
type HelpRequestBody struct {
	// Comment is what the agent asks.
	Comment string `json:"comment,omitempty"`
	// Reply, when present, is sent to the customer first ("send and ask
	// for help"), as POST /v1/conversations/{id}/reply would send it.
	Reply *ReplyRequest `json:"reply,omitempty"`
}

// HelpAnswerBody is the body of POST .../help-requests/{request_id}/answer.
type HelpAnswerBody struct {
	Text string `json:"text"`
}

// CommentBody is the body of the external agent's actions.
type CommentBody struct {
	Comment string `json:"comment,omitempty"`
}

// checkComment checks an optional comment of at most
// domain.MaxHelpComment bytes.
func checkComment(comment string) error {
	return checkText("comment", comment, false, domain.MaxHelpComment)
}

// comment reads an optional CommentBody; no body is no comment.
func comment(r *http.Request) (string, error) {
	var in CommentBody
	if r.ContentLength == 0 { // -1, unknown, is read
		return "", nil
	}
	if err := decode(r, &in); err != nil {
		return "", err
	}
	return in.Comment, checkComment(in.Comment)
}

// nested names the field of err, a field error of a part of the body,
// from the body's top: reply.text.
func nested(prefix string, err error) error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return domain.Invalid(prefix+"."+fe.Field, fe.Reason)
	}
	return err
}

// online reports whether user is connected (their heartbeats are fresh).
func (a *API) online(ctx context.Context, tenant string) func(user uuid.UUID) (bool, error) {
	return func(user uuid.UUID) (bool, error) {
		if a.Presence == nil {
			return false, nil
		}
		status, _, err := a.Presence.Status(ctx, tenant, user.String())
		return status != "offline", err
	}
}

// askHelp hands the conversation over for help, after sending the reply
// of the body when it has one; both in one transaction.
func (a *API) askHelp(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in HelpRequestBody
	if r.ContentLength != 0 { // no body: no comment, no reply
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if err := checkComment(in.Comment); err != nil {
		return err
	}
	var draft *replyDraft
	if in.Reply != nil {
		d, err := checkReply(p, *in.Reply)
		if err != nil {
			return nested("reply", err)
		}
		// A reply sent translated goes through POST .../reply, which
		// waits for the translator; this one is not translated.
		if in.Reply.Translate || in.Reply.TranslateTo != "" || in.Reply.Fallback != "" {
			return domain.Invalid("reply.translate", "a reply sent with a help request is not translated: send it translated with POST /v1/conversations/{id}/reply")
		}
		draft = &d
	}
	now := a.Clock.Now()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.HelpRequest(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		var reply *store.Change
		if draft != nil {
			sent, err := a.sendReply(r.Context(), tx, p, c, *draft)
			if err != nil {
				return store.Change{}, nested("reply", err)
			}
			reply = &sent
		}
		return a.Store.AskHelp(r.Context(), tx, p, c, in.Comment, reply, now)
	})
}

// listHelpRequests lists the conversation's help requests and their
// answers, for whoever may see it.
func (a *API) listHelpRequests(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	items, err := a.Store.HelpRequests(r.Context(), c.ID)
	if err != nil {
		return err
	}
	return ok(w, List[store.HelpRequest]{Items: items})
}

// answerHelp answers a help request: the conversation goes back to the
// requester when they are connected, else to its queue.
func (a *API) answerHelp(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermAnswerHelpRequests); err != nil {
		return err
	}
	var in HelpAnswerBody
	if err := decode(r, &in); err != nil {
		return err
	}
	request, err := pathID(r, "request_id")
	if err != nil {
		return err
	}
	if err := checkText("text", in.Text, true, domain.MaxHelpAnswer); err != nil {
		return err
	}
	now := a.Clock.Now()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.AnswerHelp(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		return a.Store.AnswerHelp(r.Context(), tx, p, c, request, in.Text, a.online(r.Context(), p.Tenant), now)
	})
}

// sendExternal hands the conversation to an external agent.
func (a *API) sendExternal(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	note, err := comment(r)
	if err != nil {
		return err
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.External(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		return store.SendExternal(p, c, note)
	})
}

// returnExternal brings the conversation back from its external agent: to
// the agent who sent it when they are connected, else to its queue.
func (a *API) returnExternal(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	note, err := comment(r)
	if err != nil {
		return err
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.ExternalReturn(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		return store.ReturnExternal(r.Context(), tx, c, note, a.online(r.Context(), p.Tenant))
	})
}

func (a *API) getHelpSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	h, err := a.Store.GetHelpSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, h)
}

// putHelpSettings replaces the tenant's help settings; a field left out
// takes its default.
func (a *API) putHelpSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in store.HelpSettings
	if err := decode(r, &in); err != nil {
		return err
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.HelpSettings, error) {
		return a.Store.PutHelpSettings(r.Context(), tx, tenant, in, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}
