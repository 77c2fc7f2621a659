module github.com/switchboard-oss/switchboard/cmd/switchboard

go 1.26.0

require (
	github.com/switchboard-oss/switchboard/connectors/chat v0.0.0
	github.com/switchboard-oss/switchboard/pkg v0.0.0
	github.com/switchboard-oss/switchboard/services/inbox v0.0.0
)

replace (
	github.com/switchboard-oss/switchboard/connectors/chat => ../../connectors/chat
	github.com/switchboard-oss/switchboard/pkg => ../../pkg
	github.com/switchboard-oss/switchboard/services/inbox => ../../services/inbox
)
