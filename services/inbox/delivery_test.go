package inbox_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestDeliveryStatusNeverMovesBackwards(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	_, tok := e.userToken(t, b, "agent", q)
	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "Bonjour")
	var list struct {
		Items []fullConversation `json:"items"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, "/v1/conversations", "", &list)
		return len(list.Items) == 1
	}, "not stored")
	path := "/v1/conversations/" + list.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Bonjour, nous regardons."}`, nil))

	type msg struct {
		ID             string `json:"id"`
		Direction      string `json:"direction"`
		DeliveryStatus string `json:"delivery_status"`
		DeliveryError  string `json:"delivery_error"`
	}
	reply := func() msg {
		var l struct {
			Items []msg `json:"items"`
		}
		require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/messages", "", &l))
		for _, m := range l.Items {
			if m.Direction == "outbound" {
				return m
			}
		}
		t.Fatal("no outbound message")
		return msg{}
	}
	m := reply()
	require.Equal(t, "pending", m.DeliveryStatus)

	report := func(status, errText string) {
		d := events.Delivery{MessageID: m.ID, TenantID: b.Tenant.ID.String(), Status: status, Error: errText, At: time.Now()}
		ev, err := events.New(events.TypeDelivery, "test", d.TenantID, time.Now(), d)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(context.Background(), events.TopicDelivery, []byte(m.ID), ev))
	}
	report("delivered", "")
	testkit.Eventually(t, 20*time.Second, func() bool { return reply().DeliveryStatus == "delivered" }, "delivered not shown")
	report("sent", "") // late, out of order
	report("read", "")
	testkit.Eventually(t, 20*time.Second, func() bool { return reply().DeliveryStatus == "read" }, "read not shown")
	require.Equal(t, "read", reply().DeliveryStatus, "a late 'sent' moved the status backwards")
}

func TestLanguageIsDetectedBehindIngestion(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?")
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Language string `json:"language"`
		} `json:"items"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		e.do(t, b.APIToken.Token, http.MethodGet, "/v1/conversations", "", &list)
		return len(list.Items) == 1 && list.Items[0].Language == "fr"
	}, "the conversation's language was not detected: %+v", list.Items)
	var msgs struct {
		Items []struct {
			Language string `json:"language"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, b.APIToken.Token, http.MethodGet, "/v1/conversations/"+list.Items[0].ID+"/messages", "", &msgs))
	require.Equal(t, "fr", msgs.Items[0].Language)
}
