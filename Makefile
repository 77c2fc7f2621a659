# Switchboard. `make run` runs the whole mesh in one process; `make test`
# runs every test of every module. See README.md.

GO       ?= go
# Every module of the workspace: `go test ./...` at the root does not cross
# module boundaries.
MODULES  := $(shell $(GO) list -m -f '{{.Dir}}')
BIN      := bin/switchboard
FUZZTIME ?= 10s

.PHONY: all build run test lint fuzz bench services docs clean

all: lint test

build:
	$(GO) build -o $(BIN) ./cmd/switchboard

## run: the whole mesh in one process, with embedded Kafka and Redis; needs PostgreSQL.
run: build
	scripts/services.sh postgres
	./$(BIN) -target=all -log.format=text

## test: lint, every module's tests against real PostgreSQL and Redis (Kafka through kfake), brief fuzzing.
test: lint
	scripts/services.sh postgres redis dovecot
	@set -e; for m in $(MODULES); do \
		echo "== test $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 15m ./...); \
	done
	$(MAKE) fuzz

## fuzz: each fuzz target for FUZZTIME.
fuzz:
	cd connectors/chat && $(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) .
	cd connectors/email && $(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/mailparse
	cd connectors/email && $(GO) test -run='^$$' -fuzz=FuzzParseReplyAddress -fuzztime=$(FUZZTIME) ./internal/threads
	cd connectors/sms && $(GO) test -run='^$$' -fuzz=FuzzParseForm -fuzztime=$(FUZZTIME) ./internal/inbound

## lint: gofmt and go vet on every module.
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

## bench: the load benchmark of the all-in-one binary beside the machine's raw ceilings.
bench: build
	scripts/services.sh
	$(GO) run ./bench -binary $(BIN)

services:
	scripts/services.sh

## docs: regenerate docs/configuration.md from the flags.
docs:
	cd cmd/switchboard && SB_UPDATE_DOCS=1 $(GO) test -run TestConfigurationReferenceIsCurrent -count=1 .

clean:
	rm -rf bin switchboard-data
