package inbox_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestAgentsRacingForConversations: 50 agents race to assign themselves
// 200 conversations. Every conversation ends with exactly one assignee,
// exactly one agent was told it won, and the audit log agrees.
func TestAgentsRacingForConversations(t *testing.T) {
	const agents, conversations = 50, 200
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	for i := 0; i < conversations; i++ {
		e.send(t, b, fmt.Sprintf("ev-%d", i), fmt.Sprintf("m-%d", i), fmt.Sprintf("s-%d", i), fmt.Sprintf("u-%d", i), "hello")
	}
	// One after the other: logging in hashes a password on purpose slowly,
	// and fifty at once on a small machine would outlast request timeouts.
	tokens := make([]string, agents)
	ids := make([]string, agents)
	for i := range tokens {
		u, tok := e.userToken(t, b, "agent", q)
		require.NotEmpty(t, tok)
		tokens[i], ids[i] = tok, u.ID.String()
	}
	var wg sync.WaitGroup
	var convs []string
	testkit.Eventually(t, 30*time.Second, func() bool {
		var l struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		e.do(t, b.APIToken.Token, http.MethodGet, "/v1/conversations?limit=200", "", &l)
		convs = convs[:0]
		for _, c := range l.Items {
			convs = append(convs, c.ID)
		}
		return len(convs) == conversations
	}, "stored %d conversations of %d", len(convs), conversations)

	var mu sync.Mutex
	winners := map[string][]string{} // conversation -> agents told they won
	statuses := map[int]int{}
	for a := 0; a < agents; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := rand.Perm(conversations)
			for _, i := range order {
				status := e.do(t, tokens[a], http.MethodPost, "/v1/conversations/"+convs[i]+"/assign", "", nil)
				mu.Lock()
				statuses[status]++
				if status == http.StatusOK {
					winners[convs[i]] = append(winners[convs[i]], ids[a])
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusOK: conversations, http.StatusConflict: agents*conversations - conversations}, statuses)

	for _, id := range convs {
		require.Len(t, winners[id], 1, "conversation %s won by %v", id, winners[id])
		var c fullConversation
		require.Equal(t, http.StatusOK, e.do(t, b.APIToken.Token, http.MethodGet, "/v1/conversations/"+id, "", &c))
		require.Equal(t, "assigned", c.State)
		require.Equal(t, winners[id], c.Assignees)

		var audit struct {
			Items []struct {
				Action  string `json:"action"`
				ActorID string `json:"actor_id"`
			} `json:"items"`
		}
		require.Equal(t, http.StatusOK, e.do(t, b.APIToken.Token, http.MethodGet, "/v1/conversations/"+id+"/audit", "", &audit))
		var assigns []string
		for _, a := range audit.Items {
			if a.Action == "assign" {
				assigns = append(assigns, a.ActorID)
			}
		}
		require.Equal(t, winners[id], assigns, "the audit log of %s disagrees", id)
	}
}
