package inbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// answerLog calls the API as one token and keeps every answer's body, so
// that a test can check that none shows a secret.
type answerLog struct {
	t      *testing.T
	e      env
	token  string
	bodies []string
}

// call sends a request, requires the status want and decodes the answer
// into out when out is given.
func (l *answerLog) call(method, path, body string, want int, out any) {
	l.t.Helper()
	r := azCall(l.t, l.e, l.token, method, path, body)
	require.Equal(l.t, want, r.Status, "%s %s answered %s", method, path, r)
	l.bodies = append(l.bodies, string(r.Body))
	if out != nil {
		require.NoError(l.t, json.Unmarshal(r.Body, out))
	}
}

// pagedIDs lists base two items a page, following the cursors, and
// returns the ids of the items in order.
func pagedIDs[T any](call func(method, path, body string, want int, out any), base string, id func(T) string) []string {
	var ids []string
	cursor := ""
	for {
		var l list[T]
		call(http.MethodGet, base+"?limit=2&cursor="+url.QueryEscape(cursor), "", http.StatusOK, &l)
		for _, it := range l.Items {
			ids = append(ids, id(it))
		}
		if l.NextCursor == "" {
			return ids
		}
		cursor = l.NextCursor
	}
}

// openSecrets opens the secrets of a config event as its connector does,
// after checking that every one travelled sealed.
func openSecrets(t *testing.T, e env, place seal.Place, fields []seal.Field) {
	t.Helper()
	for _, f := range fields {
		require.True(t, *f.Value == "" || seal.IsSealed(*f.Value), "%s %s: %s travels in clear", place.Kind, place.ID, f.Name)
	}
	plain, err := e.keys.OpenFields(place, fields)
	require.NoError(t, err)
	require.Zero(t, plain)
}

// readConfig reads the config topic until every key of want has as many
// events as want lists, and returns them as summary writes them; events
// of other keys are passed over.
func readConfig(t *testing.T, e env, want map[string][]string, summary func(key string, ev events.Event) string) map[string][]string {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, Topic: events.TopicConfig, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[string][]string{}
	done := func() bool {
		for key, w := range want {
			if len(got[key]) < len(w) {
				return false
			}
		}
		return true
	}
	for !done() {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "so far: %v", got)
		key := string(m.Key)
		if _, ok := want[key]; !ok {
			continue
		}
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		got[key] = append(got[key], summary(key, ev))
	}
	return got
}
