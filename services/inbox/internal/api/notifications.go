package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The notification routes: what a user was told (also pushed on their
// stream), their choice of email when offline, and the tenant's mailbox
// that sends those emails.

// MaxReadIDs bounds the ids of one POST /v1/me/notifications/read.
const MaxReadIDs = 200

func (a *API) registerNotifications(r Router) {
	a.handle(r, "GET /v1/me/notifications", a.listNotifications)
	a.handle(r, "POST /v1/me/notifications/read", a.readNotifications)
	a.handle(r, "GET /v1/me/notification-settings", a.getNotificationPreferences)
	a.handle(r, "PUT /v1/me/notification-settings", a.putNotificationPreferences)
	a.handle(r, "GET /v1/admin/settings/notifications", a.getNotificationSettings)
	a.handle(r, "PUT /v1/admin/settings/notifications", a.putNotificationSettings)
}

// notified returns the principal's tenant and user: API tokens are told
// nothing.
func notified(p domain.Principal) (tenant, user uuid.UUID, err error) {
	user, err = uuid.Parse(p.UserID)
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("%w: only a user has notifications", domain.ErrForbidden)
	}
	tenant, err = tenantOf(p)
	return tenant, user, err
}

// listNotifications pages the user's notifications, newest first;
// ?unread=true keeps the unread ones.
func (a *API) listNotifications(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, user, err := notified(p)
	if err != nil {
		return err
	}
	unread := false
	switch r.URL.Query().Get("unread") {
	case "", "false":
	case "true":
		unread = true
	default:
		return domain.Invalid("unread", "must be true or false")
	}
	return servePage(w, r, tenant, func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]store.Notification, error) {
		return a.Store.ListNotifications(ctx, tenant, user, unread, after, limit)
	}, store.Notification.Position)
}

// ReadNotificationsRequest is the body of POST /v1/me/notifications/read:
// ids, or all.
type ReadNotificationsRequest struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

// readNotifications marks notifications read; ids of other users'
// notifications change nothing.
func (a *API) readNotifications(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, user, err := notified(p)
	if err != nil {
		return err
	}
	var in ReadNotificationsRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	switch {
	case in.All && len(in.IDs) > 0:
		return domain.Invalid("ids", "must be left out with all")
	case !in.All && len(in.IDs) == 0:
		return domain.Invalid("ids", "must list at least one notification, or set all")
	case len(in.IDs) > MaxReadIDs:
		return domain.Invalid("ids", fmt.Sprintf("must list at most %d notifications", MaxReadIDs))
	}
	ids := make([]uuid.UUID, len(in.IDs))
	for i, s := range in.IDs {
		if ids[i], err = uuid.Parse(s); err != nil {
			return domain.Invalid(fmt.Sprintf("ids[%d]", i), "must be a notification id")
		}
	}
	n, err := a.Store.MarkNotificationsRead(r.Context(), tenant, user, ids, in.All, a.settingsNow())
	if err != nil {
		return err
	}
	return ok(w, map[string]int64{"marked": n})
}

func (a *API) getNotificationPreferences(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	_, user, err := notified(p)
	if err != nil {
		return err
	}
	prefs, err := a.Store.GetNotificationPreferences(r.Context(), user)
	if err != nil {
		return err
	}
	return ok(w, prefs)
}

// NotificationPreferencesRequest is the body of PUT
// /v1/me/notification-settings.
type NotificationPreferencesRequest struct {
	EmailWhenOffline *bool `json:"email_when_offline"`
}

func (a *API) putNotificationPreferences(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	_, user, err := notified(p)
	if err != nil {
		return err
	}
	var in NotificationPreferencesRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.EmailWhenOffline == nil {
		return domain.Invalid("email_when_offline", "is required")
	}
	prefs := store.NotificationPreferences{EmailWhenOffline: *in.EmailWhenOffline}
	if err := a.Store.PutNotificationPreferences(r.Context(), user, prefs, a.settingsNow()); err != nil {
		return err
	}
	return ok(w, prefs)
}

func (a *API) getNotificationSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	s, err := a.Store.GetNotificationSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, s)
}

// NotificationSettingsRequest is the body of PUT
// /v1/admin/settings/notifications; a null or absent mailbox_id means the
// operator's SMTP.
type NotificationSettingsRequest struct {
	MailboxID *string `json:"mailbox_id"`
}

func (a *API) putNotificationSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in NotificationSettingsRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var s store.NotificationSettings
	if in.MailboxID != nil {
		id, err := uuid.Parse(*in.MailboxID)
		if err != nil {
			return domain.Invalid("mailbox_id", "must be a mailbox id or null")
		}
		s.MailboxID = &id
	}
	if err := a.Store.PutNotificationSettings(r.Context(), tenant, s, a.settingsNow()); err != nil {
		return err
	}
	return ok(w, s)
}
