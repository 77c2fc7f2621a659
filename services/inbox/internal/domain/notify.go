package domain

import "slices"

// NoticeKind is what a notification tells a user of ([002] "notifié").
type NoticeKind string

// Notification kinds.
const (
	// NoticeAssigned: someone else assigned a conversation to the user
	// (assign_users, a transfer to them, a help answer giving it back).
	NoticeAssigned NoticeKind = "assigned"
	// NoticeHelpRequest: an agent asks for help on a conversation the
	// user may answer for.
	NoticeHelpRequest NoticeKind = "help_request"
	// NoticeExpertQuestion: a question awaits the user as an expert.
	NoticeExpertQuestion NoticeKind = "expert_question"
	// NoticeExpertAnswer: the expert answered the user's question.
	NoticeExpertAnswer NoticeKind = "expert_answer"
	// NoticeCustomerMessage: the customer wrote on a conversation the
	// user holds.
	NoticeCustomerMessage NoticeKind = "customer_message"
)

// ActionNoticeData is what the notification rules read of an action's
// audit data; each action fills the keys it has.
type ActionNoticeData struct {
	// UserIDs are assign_users' users.
	UserIDs []string `json:"user_ids"`
	// UserID is a transfer's target user.
	UserID string `json:"user_id"`
	// BackTo and RequesterID are a help answer's: the conversation goes
	// back to the requester when BackTo is "requester".
	BackTo      string `json:"back_to"`
	RequesterID string `json:"requester_id"`
	// ExpertID and AskerID are an expert question's and answer's.
	ExpertID string `json:"expert_id"`
	AskerID  string `json:"asker_id"`
}

// Notice is who an event tells of what: Users by id, and, when
// HelpAnswerers, every active user who may answer help requests and sees
// the conversation (see AnswersHelp).
type Notice struct {
	Kind          NoticeKind
	Users         []string
	HelpAnswerers bool
	// Except are users never told (a help request's requester, whoever
	// made the request).
	Except []string
}

// NoticeOfAction returns the notice of an action on a conversation; ok is
// false when the action tells nobody. The actor is left in: Recipients
// takes them out.
func NoticeOfAction(action Action, d ActionNoticeData) (n Notice, ok bool) {
	switch action {
	case ActionAssignUsers:
		n = Notice{Kind: NoticeAssigned, Users: d.UserIDs}
	case ActionTransfer:
		if d.UserID == "" {
			return Notice{}, false // to a queue, a skill or a language
		}
		n = Notice{Kind: NoticeAssigned, Users: []string{d.UserID}}
	case ActionHelpAnswer:
		if d.BackTo != "requester" || d.RequesterID == "" {
			return Notice{}, false
		}
		n = Notice{Kind: NoticeAssigned, Users: []string{d.RequesterID}}
	case ActionHelpRequest:
		n = Notice{Kind: NoticeHelpRequest, HelpAnswerers: true, Except: []string{d.RequesterID}}
	case ActionExpertQuestion:
		n = Notice{Kind: NoticeExpertQuestion, Users: []string{d.ExpertID}}
	case ActionExpertAnswer:
		n = Notice{Kind: NoticeExpertAnswer, Users: []string{d.AskerID}}
	default:
		return Notice{}, false
	}
	return n, n.HelpAnswerers || slices.ContainsFunc(n.Users, func(u string) bool { return u != "" })
}

// NoticeOfCustomerMessage returns the notice of a customer's message on a
// conversation held by assignees; a muted conversation tells nobody.
func NoticeOfCustomerMessage(assignees []string, muted bool) (Notice, bool) {
	if muted || len(assignees) == 0 {
		return Notice{}, false
	}
	return Notice{Kind: NoticeCustomerMessage, Users: assignees}, true
}

// AnswersHelp reports whether p is told of a help request on a
// conversation in queue ("" for none) assigned to assignees.
func AnswersHelp(p Principal, queue string, assignees []string) bool {
	return p.Can(PermAnswerHelpRequests) && p.Sees(queue, assignees)
}

// Recipients returns the users to tell, once each, in order, without
// empty ids and without actor (the user who acted is never told of their
// own action).
func Recipients(users []string, actor string) []string {
	var out []string
	for _, u := range users {
		if u != "" && u != actor && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}
