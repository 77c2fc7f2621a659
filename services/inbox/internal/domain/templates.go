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

// Templates of agents' answers ([002] "modèles de réponse") take the
// variables an agent's reply can fill: the customer's name, the replying
// agent's, the conversation's reference, its queue, the tenant's name,
// and the contact's custom fields as {{contact.<field>}}. Unlike an
// automatic text, a reply never goes out with a hole: a variable without a
// value refuses the rendering (*MissingVariablesError).

// ContactFieldPrefix starts the variables of contacts' custom fields.
const ContactFieldPrefix = "contact."

// Bounds of contacts' custom fields.
const (
	MaxCustomFields          = 50
	MaxCustomFieldNameBytes  = 32
	MaxCustomFieldValueBytes = 1000
)

// ReplyVariables lists the variables of reply templates, besides
// {{contact.<field>}}.
func ReplyVariables() []string {
	return []string{VarCustomerName, VarAgentName, VarConversationRef, VarQueueName, VarTenantName}
}

// ValidCustomFieldName reports whether name may name a custom field of a
// contact: 1 to 32 lower-case letters, digits and _, starting with a
// letter.
func ValidCustomFieldName(name string) bool {
	if name == "" || len(name) > MaxCustomFieldNameBytes || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// ValidKeyword reports whether k may be a template's shortcut keyword: 1
// to 32 lower-case letters, digits, - and _.
func ValidKeyword(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for _, r := range k {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// replyVariable reports whether name is a variable of reply templates.
func replyVariable(name string) bool {
	if field, ok := strings.CutPrefix(name, ContactFieldPrefix); ok {
		return ValidCustomFieldName(field)
	}
	return slices.Contains(ReplyVariables(), name)
}

// CheckReplyTemplate checks the variables of a reply template's text:
// each {{ opens a variable of ReplyVariables or a {{contact.<field>}}, and
// is closed. The error names field and the first unknown variable.
func CheckReplyTemplate(field, text string) error {
	_, err := scanVariables(text, func(name string) error {
		if !replyVariable(name) {
			return Invalid(field, fmt.Sprintf("uses the unknown variable {{%s}}; the variables are %s and contact.<field>",
				name, strings.Join(ReplyVariables(), ", ")))
		}
		return nil
	}, func() error { return Invalid(field, "has a {{ that is not closed by }}") })
	return err
}

// scanVariables calls each for every variable of text, in order; an
// unclosed {{ is unclosed().
func scanVariables(text string, each func(name string) error, unclosed func() error) ([]string, error) {
	var names []string
	rest := text
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return names, nil
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return names, unclosed()
		}
		name := strings.TrimSpace(rest[:j])
		if err := each(name); err != nil {
			return names, err
		}
		names = append(names, name)
		rest = rest[j+2:]
	}
}

// MissingVariablesError is ErrUnprocessable naming the variables of a
// template that have no value for the conversation.
type MissingVariablesError struct {
	// Variables are the names, in the order they first appear.
	Variables []string
}

func (e *MissingVariablesError) Error() string {
	return fmt.Sprintf("the template's variables %s have no value for this conversation", strings.Join(e.Variables, ", "))
}

func (e *MissingVariablesError) Unwrap() error { return ErrUnprocessable }

// RenderReply fills the variables of a text checked by CheckReplyTemplate
// with vars, each value passed through escape (html.EscapeString for an
// HTML body, nil for text: as it is). A variable absent from vars or
// blank is missing: the names of all the missing ones, each once, come
// in a *MissingVariablesError.
func RenderReply(text string, vars map[string]string, escape func(string) string) (string, error) {
	var missing []string
	names, err := scanVariables(text, func(string) error { return nil }, func() error { return nil })
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if strings.TrimSpace(vars[n]) == "" && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return "", &MissingVariablesError{Variables: missing}
	}
	if escape == nil {
		return Render(text, vars), nil
	}
	escaped := make(map[string]string, len(vars))
	for k, v := range vars {
		escaped[k] = escape(v)
	}
	return Render(text, escaped), nil
}
