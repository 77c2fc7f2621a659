package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// BenchmarkIngest measures the database side of storing inbound messages:
// 8 concurrent writers (one per inbound partition), batches of 20, four
// messages per conversation. Run with -benchtime=20000x.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	pool := testkit.Postgres(b)
	s := store.New(pool, testkit.Keyring(b))
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var tenant store.Tenant
	var channel store.ChatChannel
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "bench"); err != nil {
			return err
		}
		channel, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", time.Now())
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	const writers, batch = 8, 20
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := int(next.Add(batch)) - batch
				if first >= b.N {
					return
				}
				var in []store.Inbound
				for i := first; i < first+batch && i < b.N; i++ {
					in = append(in, store.Inbound{EventID: uuid.NewString(), Msg: events.MessageReceived{
						TenantID: tenant.ID.String(), Channel: "chat", ChannelAccountID: channel.ID.String(),
						ExternalID: fmt.Sprintf("m-%d", i), ThreadKey: fmt.Sprintf("s-%d", i/4),
						From: events.Party{Identity: fmt.Sprintf("u-%d", i/4), Name: "Bench"},
						Text: "Bonjour, je n'ai pas reçu ma commande, pouvez-vous vérifier ?", ReceivedAt: time.Now(),
					}})
				}
				if _, err := s.Ingest(ctx, in, time.Now(), nil, nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
