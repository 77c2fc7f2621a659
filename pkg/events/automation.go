package events

// Automation settings, entered by admins and supervisors through the inbox
// API and published on TopicConfig for the scheduler: waiting messages and
// where they apply, acknowledgements, smart close, inactivity limits. The
// texts stay in the inbox, which renders them when it sends: the
// scheduler only needs to know when.

// TypeWaitingMessage: a waiting message was created, changed or deleted,
// with key ConfigKey("waiting_message", ID).
const TypeWaitingMessage = "sb.config.waiting_message.v1"

// TypeAutomation: a tenant's automation settings changed, with key
// ConfigKey("automation", TenantID).
const TypeAutomation = "sb.config.automation.v1"

// WaitingHours are, per waiting state, the hours after which the waiting
// message goes out; nil means it is not sent in that state.
type WaitingHours struct {
	New           *float64 `json:"new,omitempty"`
	HelpRequested *float64 `json:"help_requested,omitempty"`
	External      *float64 `json:"external,omitempty"`
}

// For returns the hours for a state, nil when none.
func (h WaitingHours) For(state string) *float64 {
	switch state {
	case "new":
		return h.New
	case "help_requested":
		return h.HelpRequested
	case "external":
		return h.External
	}
	return nil
}

// WaitingMessage is the data of TypeWaitingMessage.
type WaitingMessage struct {
	ID       string       `json:"id"`
	TenantID string       `json:"tenant_id"`
	Name     string       `json:"name"`
	Hours    WaitingHours `json:"hours"`
	Deleted  bool         `json:"deleted,omitempty"`
}

// Automation is the data of TypeAutomation: a tenant's settings.
type Automation struct {
	TenantID string `json:"tenant_id"`
	// SMS and Chat say whether automatic messages go out on those
	// channels; email always has them.
	SMS  bool `json:"sms,omitempty"`
	Chat bool `json:"chat,omitempty"`
	// WaitingMessageID is the waiting message assigned to the tenant (all
	// its queues that have none of their own).
	WaitingMessageID string `json:"waiting_message_id,omitempty"`
	// Acknowledgement says the tenant has an acknowledgement.
	Acknowledgement bool `json:"acknowledgement,omitempty"`
	// SmartCloseFirstWaitMinutes is how long smart close waits for the
	// customer before it asks, when the agent asked for that wait.
	SmartCloseFirstWaitMinutes float64 `json:"smart_close_first_wait_minutes"`
	// SmartCloseTimeoutMinutes is how long smart close waits for an answer
	// before it closes the conversation.
	SmartCloseTimeoutMinutes float64 `json:"smart_close_timeout_minutes"`
}

// AutomaticOn reports whether automatic messages go out on channel.
func (a Automation) AutomaticOn(channel string) bool {
	switch channel {
	case ChannelEmail:
		return true
	case ChannelSMS:
		return a.SMS
	case ChannelChat:
		return a.Chat
	}
	return false
}
