module github.com/switchboard-oss/switchboard/connectors/sms

go 1.26.0

replace github.com/switchboard-oss/switchboard/pkg => ../../pkg

require (
	github.com/golang-jwt/jwt/v5 v5.2.2 // indirect
	github.com/golang/mock v1.6.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/segmentio/kafka-go v0.4.51 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/switchboard-oss/switchboard/pkg v0.0.0 // indirect
	github.com/twilio/twilio-go v1.31.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)
