package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Automatic texts (acknowledgements, waiting messages, the smart-close
// question) carry variables, written {{name}}, filled in when the message
// goes out.

// Variables of automatic texts.
const (
	// VarCustomerName is the contact's name.
	VarCustomerName = "customer_name"
	// VarConversationRef is a short reference of the conversation: the
	// first 8 characters of its id, upper case.
	VarConversationRef = "conversation_ref"
	// VarQueueName is the conversation's queue, empty without one.
	VarQueueName = "queue_name"
	// VarHoursWaited is the whole hours since the conversation entered its
	// state.
	VarHoursWaited = "hours_waited"
	// VarAnnouncedDelay is the tenant's announced delay, in hours.
	VarAnnouncedDelay = "announced_delay_hours"
	// VarTenantName is the tenant's name.
	VarTenantName = "tenant_name"
	// VarAgentName is the agent who last held the conversation.
	VarAgentName = "agent_name"
)

// Variables lists every variable of automatic texts.
func Variables() []string {
	return []string{VarCustomerName, VarConversationRef, VarQueueName, VarHoursWaited, VarAnnouncedDelay, VarTenantName, VarAgentName}
}

// CheckTemplate checks the variables of an automatic text: each {{ opens
// a known variable and is closed. The error names field and the first
// unknown variable.
func CheckTemplate(field, text string) error {
	rest := text
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return Invalid(field, "has a {{ that is not closed by }}")
		}
		name := strings.TrimSpace(rest[:j])
		if !slices.Contains(Variables(), name) {
			return Invalid(field, fmt.Sprintf("uses the unknown variable {{%s}}; the variables are %s", name, strings.Join(Variables(), ", ")))
		}
		rest = rest[j+2:]
	}
}

// Render fills the variables of a text checked by CheckTemplate; a
// variable without a value becomes empty.
func Render(text string, vars map[string]string) string {
	var b strings.Builder
	rest := text
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			// Not possible for a checked text; keep it as it is.
			b.WriteString("{{" + rest)
			return b.String()
		}
		b.WriteString(vars[strings.TrimSpace(rest[:j])])
		rest = rest[j+2:]
	}
}
