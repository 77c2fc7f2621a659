package events

import "github.com/switchboard-oss/switchboard/pkg/seal"

// The secrets of configuration entities travel sealed (package seal,
// docs/adr/0022): the inbox seals them before it stores or publishes
// them, and only the connector that uses them opens them. Each is sealed
// for its place: the entity's kind (its ConfigKey kind), tenant and id,
// and the field as the entity's JSON spells it.

// Kinds of the configuration entities that hold secrets, as ConfigKey
// names them.
const (
	KindChatChannel = "chat_channel"
	KindMailbox     = "mailbox"
	KindSMSAccount  = "sms_account"
)

// SecretFields are the secrets of a mail server, named under prefix
// (imap or smtp).
func (m *MailServer) SecretFields(prefix string) []seal.Field {
	return []seal.Field{{Name: prefix + ".password", Value: &m.Password}, {Name: prefix + ".oauth2_token", Value: &m.OAuth2Token}}
}

// SecretPlace is where the mailbox's secrets are sealed for.
func (m *Mailbox) SecretPlace() seal.Place {
	return seal.Place{Kind: KindMailbox, Tenant: m.TenantID, ID: m.ID}
}

// SecretFields are the mailbox's secrets: its servers' passwords and
// OAuth2 tokens.
func (m *Mailbox) SecretFields() []seal.Field {
	return append(m.IMAP.SecretFields("imap"), m.SMTP.SecretFields("smtp")...)
}

// SecretPlace is where the account's secrets are sealed for.
func (a *SMSAccount) SecretPlace() seal.Place {
	return seal.Place{Kind: KindSMSAccount, Tenant: a.TenantID, ID: a.ID}
}

// SecretFields are the account's secrets: its auth token and its API
// key's secret.
func (a *SMSAccount) SecretFields() []seal.Field {
	return SMSSecretFields(&a.AuthToken, &a.APIKeySecret)
}

// SMSSecretFields are the secrets of an SMS account, for SMSAccount and
// the inbox's copy of it.
func SMSSecretFields(authToken, apiKeySecret *string) []seal.Field {
	return []seal.Field{{Name: "auth_token", Value: authToken}, {Name: "api_key_secret", Value: apiKeySecret}}
}

// SecretPlace is where the channel's secrets are sealed for.
func (c *ChatChannel) SecretPlace() seal.Place {
	return seal.Place{Kind: KindChatChannel, Tenant: c.TenantID, ID: c.ID}
}

// SecretFields are the channel's secrets: those that sign its webhooks
// and, when it has an endpoint, those that sign its deliveries. The
// secrets of a list share their field name: swapping them within the
// list is no attack (both sign).
func (c *ChatChannel) SecretFields() []seal.Field {
	return ChatSecretFields(c.Secrets, c.Outbound)
}

// ChatSecretFields are the secrets of a chat channel's inbound secrets
// and endpoint, for ChatChannel and the inbox's copy of it.
func ChatSecretFields(inbound []string, outbound *ChatOutbound) []seal.Field {
	var fs []seal.Field
	for i := range inbound {
		fs = append(fs, seal.Field{Name: "secrets", Value: &inbound[i]})
	}
	if outbound != nil {
		for i := range outbound.Secrets {
			fs = append(fs, seal.Field{Name: "outbound.secrets", Value: &outbound.Secrets[i]})
		}
	}
	return fs
}
