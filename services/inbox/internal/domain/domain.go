// Package domain holds the inbox's rules, without I/O: conversation states
// and the transitions between them, roles and permissions, who may see
// what. The store and the API apply them; tests check them here.
package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Errors the API maps to HTTP answers.
var (
	// ErrNotFound: no such object for this caller (missing, another
	// tenant's, or out of the caller's sight: they look alike).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller sees the object but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the object is not in a state that allows this.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is wrong; the error names the field.
	ErrInvalid = errors.New("invalid")
	// ErrUnprocessable: well-formed, but a business rule refuses it (a
	// mandatory tag is missing).
	ErrUnprocessable = errors.New("unprocessable")
)

// FieldError is ErrInvalid for one field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid builds a FieldError.
func Invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// ConflictError is ErrConflict with the object's current state, so that
// the caller can see why.
type ConflictError struct {
	State  State
	Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s (the conversation is %s)", e.Reason, e.State)
}
func (e *ConflictError) Unwrap() error { return ErrConflict }

// OptedOutError is ErrConflict: the customer opted out of messages on the
// conversation's channel (an SMS STOP), so nothing may be sent to them
// there until they opt back in (START). Field is the request field it
// refuses, as the API names it.
type OptedOutError struct {
	Field string
	// To is the customer's address on the channel (an E.164 number).
	To string
}

func (e *OptedOutError) Error() string {
	return fmt.Sprintf("the customer opted out of SMS (STOP): nothing may be sent to %s until they text START", e.To)
}
func (e *OptedOutError) Unwrap() error { return ErrConflict }

// MissingTagsError is ErrUnprocessable naming the mandatory tag lists that
// have no value.
type MissingTagsError struct {
	// Lists are the names of the tag lists without a value.
	Lists []string
}

func (e *MissingTagsError) Error() string {
	return fmt.Sprintf("mandatory tags are missing: %v", e.Lists)
}
func (e *MissingTagsError) Unwrap() error { return ErrUnprocessable }

// Role is what a user is.
type Role string

// Roles.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAgent || r == RoleSupervisor || r == RoleAdmin }

// Permission is a right beyond what every agent may do.
type Permission string

// Permissions.
const (
	// PermModerate: act on the channel's content (hide, delete a comment).
	PermModerate Permission = "moderate"
	// PermAnswerHelpRequests: answer agents' help requests.
	PermAnswerHelpRequests Permission = "answer_help_requests"
	// PermBypassQueue: transfer a conversation ahead of the queue.
	PermBypassQueue Permission = "bypass_queue"
	// PermAssignOthers: assign conversations to other users.
	PermAssignOthers Permission = "assign_others"
	// PermSeeAll: see every conversation of the tenant, whatever its queue.
	PermSeeAll Permission = "see_all"
	// PermManageSettings: queues, skills, tag lists, channels.
	PermManageSettings Permission = "manage_settings"
	// PermManageUsers: users and API tokens.
	PermManageUsers Permission = "manage_users"
	// PermManageAutomation: waiting messages, acknowledgements, smart
	// close, inactivity limits (coordinators and admins, [003]).
	PermManageAutomation Permission = "manage_automation"
	// PermManageData: the admin's duties on data ([000], [002], [004]):
	// anonymise or delete messages and conversations, erase a contact,
	// send a conversation by email to an outsider.
	PermManageData Permission = "manage_data"
)

// AllPermissions lists every permission.
func AllPermissions() []Permission {
	return []Permission{PermModerate, PermAnswerHelpRequests, PermBypassQueue, PermAssignOthers, PermSeeAll, PermManageSettings, PermManageUsers,
		PermManageAutomation, PermManageData}
}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return slices.Contains(AllPermissions(), p) }

// RolePermissions are the permissions every holder of a role has; a user
// may be granted more.
func RolePermissions(r Role) []Permission {
	switch r {
	case RoleSupervisor:
		return []Permission{PermAnswerHelpRequests, PermBypassQueue, PermAssignOthers, PermSeeAll, PermManageAutomation}
	case RoleAdmin:
		return AllPermissions()
	}
	return nil
}

// Principal is who calls: a user, or an integration's API token.
type Principal struct {
	// Tenant scopes everything the principal sees.
	Tenant string
	// UserID is the user, empty for an API token.
	UserID string
	// TokenID is the API token, empty for a user.
	TokenID string
	// Role and Permissions decide what it may do.
	Role        Role
	Permissions []Permission
	// Queues are the user's queues (teams).
	Queues []string
}

// Can reports whether the principal has p, by role or by grant.
func (p Principal) Can(perm Permission) bool {
	return slices.Contains(RolePermissions(p.Role), perm) || slices.Contains(p.Permissions, perm)
}

// ActorKind and ActorID say who did something, for the audit log.
func (p Principal) ActorKind() string {
	if p.UserID != "" {
		return "user"
	}
	return "api_token"
}

// ActorID is the user or token id.
func (p Principal) ActorID() string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.TokenID
}

// Sees reports whether the principal may see a conversation in queue (""
// for none) assigned to assignees: supervisors and admins see everything;
// an agent sees what is in one of their queues, what no queue holds yet,
// and what is assigned to them. Routing a conversation to another team
// takes it out of an agent's sight.
func (p Principal) Sees(queue string, assignees []string) bool {
	if p.Can(PermSeeAll) {
		return true
	}
	if queue == "" || slices.Contains(p.Queues, queue) {
		return true
	}
	return p.UserID != "" && slices.Contains(assignees, p.UserID)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
