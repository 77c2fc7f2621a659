package domain

import (
	"errors"
	"testing"
)

func TestPseudonymise(t *testing.T) {
	aliases := []Alias{{Name: "Ada Lovelace", Label: LabelClient}, {Name: "Jean-Pierre Martin", Label: LabelAgent}, {Name: "Bo", Label: LabelAgent}, {Name: "X", Label: LabelAgent}}
	for _, c := range []struct{ in, want string }{
		{"Hello Ada Lovelace, I am Jean-Pierre.", "Hello Client, I am Agent."},
		{"ada said LOVELACE's order is late", "Client said Client's order is late"},
		{"Adam and Adalovelace are not Ada", "Adam and Adalovelace are not Client"},
		{"pierre MARTIN, jean", "Agent Agent, Agent"},
		{"Bo, Bob and X", "Agent, Bob and X"},
		{"Élodie", "Élodie"},
		{"", ""},
	} {
		if got := Pseudonymise(c.in, aliases); got != c.want {
			t.Errorf("Pseudonymise(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// The same name for the customer and an agent: the earlier alias wins.
	if got := Pseudonymise("Marie", []Alias{{"Marie Curie", LabelClient}, {"Marie", LabelAgent}}); got != "Client" {
		t.Errorf("got %q", got)
	}
	if got := Pseudonymise("Hélène HÉLÈNE", []Alias{{"hélène", LabelClient}}); got != "Client Client" {
		t.Errorf("got %q", got)
	}
}

func TestAskAndAnswerExpert(t *testing.T) {
	agent := Principal{UserID: "a", Role: RoleAgent}
	super := Principal{UserID: "s", Role: RoleSupervisor}
	token := Principal{TokenID: "t", Role: RoleAdmin}
	assigned := Conversation{State: StateAssigned, Assignees: []string{"a"}}
	if err := AskExpert(agent, assigned); err != nil {
		t.Errorf("assignee: %v", err)
	}
	if err := AskExpert(super, assigned); err != nil {
		t.Errorf("supervisor: %v", err)
	}
	if err := AskExpert(Principal{UserID: "b", Role: RoleAgent}, assigned); !errors.Is(err, ErrForbidden) {
		t.Errorf("another agent: %v", err)
	}
	if err := AskExpert(token, assigned); !errors.Is(err, ErrForbidden) {
		t.Errorf("API token: %v", err)
	}
	if err := AskExpert(super, Conversation{State: StateDone}); !errors.Is(err, ErrConflict) {
		t.Errorf("done: %v", err)
	}
	q := ExpertQuestionRef{Asker: "a", Expert: "e"}
	if err := AnswerExpertQuestion(Principal{UserID: "e"}, q, false); err != nil {
		t.Errorf("expert: %v", err)
	}
	if err := AnswerExpertQuestion(Principal{UserID: "e"}, q, true); !errors.Is(err, ErrConflict) {
		t.Errorf("twice: %v", err)
	}
	if err := AnswerExpertQuestion(Principal{UserID: "a"}, q, false); !errors.Is(err, ErrForbidden) {
		t.Errorf("asker: %v", err)
	}
	if !SeesExpertQuestion(Principal{UserID: "e"}, q, false) || !SeesExpertQuestion(Principal{UserID: "a"}, q, false) {
		t.Error("expert or asker does not see the question")
	}
	if SeesExpertQuestion(super, q, false) || !SeesExpertQuestion(super, q, true) {
		t.Error("a supervisor sees the question by the conversation")
	}
	if SeesExpertQuestion(agent, ExpertQuestionRef{Asker: "x", Expert: "e"}, true) {
		t.Error("an agent who sees the conversation sees another's question")
	}
}
