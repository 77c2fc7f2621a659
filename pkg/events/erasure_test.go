package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

func TestEraseValidate(t *testing.T) {
	good := func() events.Erase {
		return events.Erase{ID: "e1", TenantID: "t1", Channel: events.ChannelEmail, Reason: events.EraseAnonymise,
			Messages: []events.ErasedMessage{{ID: "m1", Direction: "inbound", ChannelAccountID: "a1", ConversationID: "c1"}}}
	}
	ok := good()
	require.NoError(t, ok.Validate())
	require.Equal(t, []string{"m1"}, ok.MessageIDs())
	many := make([]string, events.MaxEraseItems+1)
	for i := range many {
		many[i] = "x"
	}
	for field, spoil := range map[string]func(e *events.Erase){
		"id":            func(e *events.Erase) { e.ID = "" },
		"tenant_id":     func(e *events.Erase) { e.TenantID = "" },
		"channel":       func(e *events.Erase) { e.Channel = "fax" },
		"reason":        func(e *events.Erase) { e.Reason = "forget" },
		"messages":      func(e *events.Erase) { e.Messages = nil },
		"messages[0]":   func(e *events.Erase) { e.Messages[0].Direction = "sideways" },
		"identities":    func(e *events.Erase) { e.Identities = many },
		"identities[0]": func(e *events.Erase) { e.Identities = []string{strings.Repeat("a", 300)} },
		"conversations[0]": func(e *events.Erase) {
			e.Conversations = []events.ErasedConversation{{ID: "c1"}}
		},
	} {
		e := good()
		spoil(&e)
		var fe *events.FieldError
		require.True(t, errors.As(e.Validate(), &fe), field)
		require.Equal(t, field, fe.Field)
	}
}
