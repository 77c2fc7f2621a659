package events

// Topic names. The key of every record is the conversation key (see
// ConversationKey) or, on the config topic, the entity key, so that
// everything about one conversation or one entity stays in order.
const (
	// TopicInbound carries customer messages from the connectors to the inbox.
	TopicInbound = "sb.inbound.v1"
	// TopicConversations carries the inbox's conversation events.
	TopicConversations = "sb.conversations.v1"
	// TopicConfig is the compacted topic of configuration entities entered
	// through the inbox API, from which connectors and services build their
	// view.
	TopicConfig = "sb.config.v1"
	// TopicDLQ receives messages a consumer could not process, with headers
	// saying why (see the bus package).
	TopicDLQ = "sb.dlq.v1"
	// TopicDelivery carries what channels say of sent messages.
	TopicDelivery = "sb.delivery.v1"
)

// TopicOutbound is the topic of send commands for a channel:
// sb.outbound.<channel>.v1, consumed by that channel's connector.
func TopicOutbound(channel string) string { return "sb.outbound." + channel + ".v1" }

// TopicSpec describes a topic for creation: in the embedded broker at start,
// and in deploy/topics for a real cluster.
type TopicSpec struct {
	// Name is the topic name.
	Name string
	// Partitions bounds the parallelism of its consumers.
	Partitions int
	// Compacted topics keep the latest record per key forever.
	Compacted bool
}

// Topics lists every topic Switchboard uses.
func Topics() []TopicSpec {
	return []TopicSpec{
		{Name: TopicInbound, Partitions: 8},
		{Name: TopicConversations, Partitions: 8},
		{Name: TopicConfig, Partitions: 1, Compacted: true},
		{Name: TopicDLQ, Partitions: 1},
		{Name: TopicDelivery, Partitions: 8},
		{Name: TopicOutbound(ChannelChat), Partitions: 8},
		{Name: TopicOutbound(ChannelEmail), Partitions: 8},
		{Name: TopicOutbound(ChannelSMS), Partitions: 8},
		{Name: TopicCommands, Partitions: 8},
	}
}
