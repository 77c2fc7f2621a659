package domain

import (
	"fmt"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Remboursement  Refusé!": "remboursement refuse",
		"  ÉTÉ, déjà-vu ":        "ete deja vu",
		"Straße Œuvre":           "strasse oeuvre",
		"order #42/B":            "order 42 b",
		"...":                    "",
		"":                       "",
	} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoutingMatch(t *testing.T) {
	const (
		mailbox = "3f1c4b9e-8d2a-4c1e-9b7a-1a2b3c4d5e6f"
		chat    = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
		contact = "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a"
	)
	email := func(subject, text string) RoutingFacts {
		return RoutingFacts{ChannelAccountID: mailbox, Channel: "email", ContactID: contact, Identity: "Ada@Example.com", Subject: subject, Text: text}
	}
	french := func(f RoutingFacts) RoutingFacts {
		f.Language = func() string { return "fr" }
		return f
	}
	for _, tc := range []struct {
		name  string
		rules []RoutingConditions
		facts RoutingFacts
		want  int
	}{
		{"no rules", nil, email("", "hello"), -1},
		{"a rule without conditions matches everything", []RoutingConditions{{}}, email("", ""), 0},
		{"channel account", []RoutingConditions{{ChannelAccountIDs: []string{chat}}, {ChannelAccountIDs: []string{chat, mailbox}}}, email("", ""), 1},
		{"channel account, upper-case id", []RoutingConditions{{ChannelAccountIDs: []string{strings.ToUpper(mailbox)}}}, email("", ""), 0},
		{"channel", []RoutingConditions{{Channels: []string{"sms", "chat"}}, {Channels: []string{"email"}}}, email("", ""), 1},
		{"every condition must hold", []RoutingConditions{{Channels: []string{"email"}, Keywords: []string{"refund"}}, {Channels: []string{"email"}}},
			email("Hello", "where is my order"), 1},
		{"keyword in the subject", []RoutingConditions{{Keywords: []string{"refund"}}}, email("Refund please", "hi"), 0},
		{"keyword in the text", []RoutingConditions{{Keywords: []string{"invoice", "refund"}}}, email("Hi", "I want a REFUND."), 0},
		{"keyword, accents aside", []RoutingConditions{{Keywords: []string{"remboursement refusé"}}}, email("", "Mon REMBOURSEMENT refuse ?"), 0},
		{"keyword written without its accent", []RoutingConditions{{Keywords: []string{"resilier"}}}, email("", "Je veux résilier."), 0},
		{"keyword: whole words only", []RoutingConditions{{Keywords: []string{"fund"}}}, email("", "refund"), -1},
		{"phrase: whole words only", []RoutingConditions{{Keywords: []string{"order status"}}}, email("", "my order statuses"), -1},
		{"phrase across punctuation", []RoutingConditions{{Keywords: []string{"order status"}}}, email("", "Order: status?"), 0},
		{"no phrase across subject and text", []RoutingConditions{{Keywords: []string{"order status"}}}, email("My order", "Status?"), -1},
		{"language", []RoutingConditions{{Languages: []string{"de"}}, {Languages: []string{"fr", "es"}}}, french(email("", "Bonjour")), 1},
		{"language unknown", []RoutingConditions{{Languages: []string{"fr"}}}, email("", "Bonjour"), -1},
		{"email identity, case aside", []RoutingConditions{{CustomerIdentities: []string{"ada@example.COM"}}}, email("", ""), 0},
		{"phone identity, exactly", []RoutingConditions{{CustomerIdentities: []string{"+33612345678"}}},
			RoutingFacts{Channel: "sms", Identity: "+33612345679"}, -1},
		{"contact", []RoutingConditions{{ContactIDs: []string{chat}}, {ContactIDs: []string{contact}}}, email("", ""), 1},
		{"first rule wins", []RoutingConditions{{Channels: []string{"email"}}, {Keywords: []string{"refund"}}}, email("refund", ""), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewRoutingMatcher(tc.rules).Match(tc.facts); got != tc.want {
				t.Errorf("Match(%+v) = %d, want %d", tc.facts, got, tc.want)
			}
		})
	}
}

// TestRoutingMatchAsksTheLanguageOnlyWhenNeeded: detecting a language
// costs more than the rest of ingestion.
func TestRoutingMatchAsksTheLanguageOnlyWhenNeeded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []RoutingConditions
		want  int // calls
	}{
		{"no language rule", []RoutingConditions{{Channels: []string{"email"}}, {}}, 0},
		{"the language rule's other conditions fail", []RoutingConditions{{Channels: []string{"sms"}, Languages: []string{"fr"}}}, 0},
		{"an earlier rule matches", []RoutingConditions{{}, {Languages: []string{"fr"}}}, 0},
		{"two language rules: asked once", []RoutingConditions{{Languages: []string{"de"}}, {Languages: []string{"es"}}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			NewRoutingMatcher(tc.rules).Match(RoutingFacts{Channel: "email", Language: func() string { calls++; return "fr" }})
			if calls != tc.want {
				t.Errorf("Language was called %d times, want %d", calls, tc.want)
			}
		})
	}
}

func TestRoutingConditionsCheck(t *testing.T) {
	valid := func(code string) bool { return code == "fr" || code == "en" }
	many := make([]string, MaxRoutingValues+1)
	for i := range many {
		many[i] = fmt.Sprintf("word%d", i)
	}
	for _, tc := range []struct {
		name  string
		in    RoutingConditions
		field string // "" when valid
	}{
		{"empty", RoutingConditions{}, ""},
		{"all of them", RoutingConditions{ChannelAccountIDs: []string{"3F1C4B9E-8D2A-4C1E-9B7A-1A2B3C4D5E6F"}, Channels: []string{"sms"}, Languages: []string{"fr"},
			Keywords: []string{"refund", "order status"}, CustomerIdentities: []string{"ada@example.com", "+33612345678"},
			ContactIDs: []string{"0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a"}}, ""},
		{"account not an id", RoutingConditions{ChannelAccountIDs: []string{"support"}}, "conditions.channel_account_ids[0]"},
		{"account id twice", RoutingConditions{ChannelAccountIDs: []string{"3f1c4b9e-8d2a-4c1e-9b7a-1a2b3c4d5e6f", "3F1C4B9E-8D2A-4C1E-9B7A-1A2B3C4D5E6F"}},
			"conditions.channel_account_ids[1]"},
		{"channel unknown", RoutingConditions{Channels: []string{"email", "fax"}}, "conditions.channels[1]"},
		{"language unknown", RoutingConditions{Languages: []string{"french"}}, "conditions.languages[0]"},
		{"keyword empty", RoutingConditions{Keywords: []string{""}}, "conditions.keywords[0]"},
		{"keyword too long", RoutingConditions{Keywords: []string{strings.Repeat("é", MaxKeywordRunes+1)}}, "conditions.keywords[0]"},
		{"keyword of punctuation", RoutingConditions{Keywords: []string{"?!"}}, "conditions.keywords[0]"},
		{"keyword on two lines", RoutingConditions{Keywords: []string{"a\nb"}}, "conditions.keywords[0]"},
		{"keyword twice, accents aside", RoutingConditions{Keywords: []string{"Résilier", "resilier"}}, "conditions.keywords[1]"},
		{"too many keywords", RoutingConditions{Keywords: many}, "conditions.keywords"},
		{"identity with a space", RoutingConditions{CustomerIdentities: []string{"Ada <ada@example.com>"}}, "conditions.customer_identities[0]"},
		{"identity twice, case aside", RoutingConditions{CustomerIdentities: []string{"ada@example.com", "ADA@example.com"}}, "conditions.customer_identities[1]"},
		{"contact not an id", RoutingConditions{ContactIDs: []string{"{0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a}"}}, "conditions.contact_ids[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.in.Check(valid)
			field := ""
			if fe, ok := err.(*FieldError); ok {
				field = fe.Field
			} else if err != nil {
				t.Fatalf("Check: %v, not a field error", err)
			}
			if field != tc.field {
				t.Errorf("Check(%+v) refused %q (%v), want %q", tc.in, field, err, tc.field)
			}
			if err == nil && (out.Keywords == nil || out.ContactIDs == nil) {
				t.Errorf("Check(%+v) = %+v: lists must not be nil", tc.in, out)
			}
		})
	}
}
