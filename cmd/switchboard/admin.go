package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

const adminUsage = `Usage: switchboard admin <command> [flags]

Bootstrap commands; they talk to PostgreSQL directly (DATABASE_URL) and print
JSON. Secrets are shown once: store them where they are needed.

Commands:
  create-tenant        -name NAME            a tenant, its first API token and chat channel, and
                       [-admin-email E -admin-password P [-admin-name N]]  its first admin user;
                       prints console_url, where that admin logs in ([-console-url URL])
  create-token         -tenant ID -name NAME another API token for a tenant
  create-chat-channel  -tenant ID -name NAME another chat channel for a tenant
  create-topics        -kafka.brokers LIST   Switchboard's topics on a Kafka cluster, those missing
  replay-dead-letters  -kafka.brokers LIST   publish dead letters (sb.dlq.v1) back to their topic
                       [-topic T] [-handler G] [-reason-contains S] [-from N] [-to N] [-dry-run]
  secrets new-key      [-kid ID] [-file F]   a key to seal channel secrets with (kid=base64)
  secrets reseal                             seal every stored secret under the active key

The commands that write secrets (chat channels' signing secrets) seal them
with the targets' keys: -secrets.keys-file (SB_SECRETS_KEYS_FILE), or the
keys file of the -target=all process in -data-dir.
`

func runAdmin(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "create-topics":
		return createTopics(ctx, rest, env, stdout, stderr)
	case "replay-dead-letters":
		return replayDeadLetters(ctx, rest, env, stdout, stderr)
	case "secrets":
		return runSecrets(ctx, rest, env, stdout, stderr)
	}
	f := flag.NewFlagSet("switchboard admin "+cmd, flag.ContinueOnError)
	f.SetOutput(stderr)
	var db pg.Config
	db.RegisterFlags("", f)
	name := f.String("name", "", "Name of what is created.")
	keyring := adminKeys(f)
	var tenantID *string
	var first inbox.FirstAdmin
	var consoleURL string
	switch cmd {
	case "create-tenant":
		f.StringVar(&first.Email, "admin-email", "", "Email of the tenant's first admin user, created with the tenant; they log in to the web console with it.")
		f.StringVar(&first.Password, "admin-password", "", "Password of the first admin user (at least 10 characters); prefer SB_ADMIN_PASSWORD to keep it out of the shell's history.")
		f.StringVar(&first.Name, "admin-name", "", "Name of the first admin user; Administrator when empty.")
		f.StringVar(&consoleURL, "console-url", "http://localhost:8080/", "Address of the web console as users reach it (the inbox's HTTP address), for the console_url printed.")
	case "create-token", "create-chat-channel":
		tenantID = f.String("tenant", "", "Id of the tenant, as printed by create-tenant.")
	default:
		fmt.Fprintf(stderr, "switchboard admin: unknown command %q\n\n%s", cmd, adminUsage)
		return exitUsage
	}
	if err := config.Load(f, rest, env, envAliases()); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	if err := db.Validate(""); err != nil {
		return usageError(stderr, err)
	}
	if strings.TrimSpace(*name) == "" {
		return usageError(stderr, config.Invalid("name", "is required", "pass -name"))
	}
	var admin *inbox.FirstAdmin
	if cmd == "create-tenant" {
		var err error
		if admin, err = firstAdmin(first); err != nil {
			return usageError(stderr, err)
		}
		if consoleURL, err = checkConsoleURL(consoleURL); err != nil {
			return usageError(stderr, err)
		}
	}
	var tenant uuid.UUID
	if tenantID != nil {
		var err error
		if tenant, err = uuid.Parse(*tenantID); err != nil {
			return usageError(stderr, config.Invalid("tenant", fmt.Sprintf("%q is not a tenant id", *tenantID), "pass the id printed by create-tenant"))
		}
	}

	keys, err := keyring()
	if err != nil {
		return usageError(stderr, err)
	}

	adm, closeAdmin, err := openAdmin(ctx, db, keys)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	defer closeAdmin()

	var out any
	switch cmd {
	case "create-tenant":
		b, err := adm.CreateTenantWithAdmin(ctx, *name, admin)
		var field *inbox.FieldError
		if errors.As(err, &field) {
			return usageError(stderr, config.Invalid("admin-"+field.Field, field.Reason, "pass another -admin-"+field.Field))
		}
		if err != nil {
			return adminFailed(stderr, err)
		}
		out = struct {
			inbox.Bootstrap
			WebhookPath string `json:"chat_webhook_path"`
			ConsoleURL  string `json:"console_url"`
		}{b, webhookPath(b.ChatChannel.ID), consoleURL + "?tenant=" + b.Tenant.ID.String()}
	case "create-token":
		t, err := adm.CreateAPIToken(ctx, tenant, *name)
		if err != nil {
			return adminFailed(stderr, err)
		}
		out = t
	case "create-chat-channel":
		c, err := adm.CreateChatChannel(ctx, tenant, *name)
		if err != nil {
			return adminFailed(stderr, err)
		}
		out = struct {
			inbox.ChatChannel
			WebhookPath string `json:"webhook_path"`
		}{c, webhookPath(c.ID)}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// firstAdmin is the admin user the -admin- flags describe; nil when
// none is asked for.
func firstAdmin(a inbox.FirstAdmin) (*inbox.FirstAdmin, error) {
	switch {
	case a.Email == "" && a.Password == "" && a.Name == "":
		return nil, nil
	case a.Email == "":
		return nil, config.Invalid("admin-email", "is empty, but -admin-password or -admin-name is set", "pass -admin-email with the first admin's email, or leave the other -admin- flags out")
	case a.Password == "":
		return nil, config.Invalid("admin-password", "is empty, but -admin-email is set", "pass -admin-password (or SB_ADMIN_PASSWORD) with at least 10 characters")
	}
	if a.Name == "" {
		a.Name = "Administrator"
	}
	return &a, nil
}

// checkConsoleURL checks the console's address and returns it without
// query, ready for "?tenant=".
func checkConsoleURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", config.Invalid("console-url", fmt.Sprintf("%q is not an http or https URL without query", raw), "pass the address users open, such as https://switchboard.example.com/")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

func adminFailed(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
	if errors.Is(err, inbox.ErrTenantNotFound) || errors.Is(err, inbox.ErrInvalidName) {
		return exitUsage
	}
	return exitFailed
}

// webhookPath is the path chat platforms post to for a channel.
func webhookPath(channel uuid.UUID) string {
	_, path, _ := strings.Cut(chat.WebhookPath, " ")
	return strings.Replace(path, "{channel}", channel.String(), 1)
}

// createTopics creates the topics a cluster lacks, with their production
// partition counts (events.Topics); existing topics are left as they are.
func createTopics(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("switchboard admin create-topics", flag.ContinueOnError)
	f.SetOutput(stderr)
	var cfg bus.Config
	cfg.RegisterFlags("", f)
	if err := config.Load(f, args, env, envAliases()); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	if err := cfg.Validate(""); err != nil {
		return usageError(stderr, err)
	}
	if len(cfg.Brokers) == 0 {
		return usageError(stderr, config.Invalid("kafka.brokers", "is empty", "set KAFKA_BROKERS to the cluster, such as kafka-0:9092"))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, cfg, events.Topics()); err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	for _, t := range events.Topics() {
		fmt.Fprintf(stdout, "%s\t%d partitions\tcompacted=%v\n", t.Name, t.Partitions, t.Compacted)
	}
	return exitOK
}

// replayDeadLetters publishes the dead letters a filter selects back to the
// topic they came from, once their cause is fixed, and prints each as a
// JSON line.
func replayDeadLetters(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("switchboard admin replay-dead-letters", flag.ContinueOnError)
	f.SetOutput(stderr)
	var cfg bus.Config
	cfg.RegisterFlags("", f)
	var filter bus.ReplayFilter
	f.StringVar(&filter.Topic, "topic", "", "Only dead letters that came from this topic, such as sb.inbound.v1.")
	f.StringVar(&filter.Handler, "handler", "", "Only dead letters this consumer group gave up on, such as switchboard-inbox.")
	f.StringVar(&filter.ReasonContains, "reason-contains", "", "Only dead letters whose reason contains this text.")
	f.Int64Var(&filter.From, "from", 0, "First offset of sb.dlq.v1 to look at.")
	f.Int64Var(&filter.To, "to", 0, "Offset of sb.dlq.v1 to stop before; 0: the end of the topic when the command starts.")
	f.BoolVar(&filter.DryRun, "dry-run", false, "List what would be replayed; publish nothing.")
	if err := config.Load(f, args, env, envAliases()); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	if err := cfg.Validate(""); err != nil {
		return usageError(stderr, err)
	}
	if len(cfg.Brokers) == 0 {
		return usageError(stderr, config.Invalid("kafka.brokers", "is empty", "set KAFKA_BROKERS to the cluster, such as kafka-0:9092"))
	}
	if filter.From < 0 || filter.To < 0 {
		return usageError(stderr, config.Invalid("from", "offsets must not be negative", "set -from and -to to offsets of sb.dlq.v1"))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	enc := json.NewEncoder(stdout)
	n, err := bus.ReplayDeadLetters(ctx, cfg, filter, func(d bus.DeadLetter) {
		line := map[string]any{"offset": d.Offset, "topic": d.Topic, "partition": d.Partition, "source_offset": d.SourceOffset,
			"handler": d.Handler, "reason": d.Reason, "attempts": d.Attempts, "at": d.At, "replayed": d.Replayed}
		if d.Topic == "" {
			line["note"] = "not replayable: it never was on a topic (a raw mail kept for people; its headers say where it came from)"
		}
		_ = enc.Encode(line)
	})
	if err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "switchboard admin: %d dead letters replayed\n", n)
	return exitOK
}

// openAdmin connects to the database and opens the inbox's administration
// with the sealing keys; close releases the connections.
func openAdmin(ctx context.Context, db pg.Config, keys *seal.Keyring) (adm *inbox.Admin, close func(), err error) {
	pool, err := pg.Connect(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	if adm, err = inbox.NewAdmin(ctx, pool, keys, time.Now); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return adm, pool.Close, nil
}
