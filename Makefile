# Switchboard. `make run` runs the whole mesh in one process; `make test`
# runs every test of every module. See README.md.

GO       ?= go
# Every module of the workspace: `go test ./...` at the root does not cross
# module boundaries.
MODULES  := $(shell $(GO) list -m -f '{{.Dir}}')
# Modules outside the workspace, built with GOWORK=off: the chart's tests
# (Helm, client-go) and the deploy tools (go-containerregistry, compose-go)
# bring dependency trees that would raise shared modules' versions in the
# product binary if they joined go.work. Their tests run without the race
# detector: they hold no concurrency of ours, and compressing the real
# binary into an image layer takes six minutes under it instead of seconds.
TOOL_MODULES := deploy helm
BIN      := bin/switchboard
FUZZTIME ?= 10s
# The Go packages of the module in the current directory, without any
# under node_modules (web/console's npm packages: some ship Go files).
GOPKGS   := $(GO) list -e -f '{{.ImportPath}}' ./... | grep -v /node_modules/
# The packages whose tests start a Kafka broker (testkit.Kafka), run a second
# time against one that requires TLS with a client certificate and SASL SCRAM
# (SB_TEST_KAFKA_SECURE=1), without the race detector. cmd/switchboard is left
# out: most of its tests run the binary on its embedded broker, which stays
# plaintext; SECURE_KAFKA_E2E names those that start testkit.Kafka (its
# TestSecuredKafka* tests always use a secured broker, in the first pass).
# TestTimersSurviveKills and TestRoutingSurvivesChaos (thousands of timers
# and offers through kills, five minutes together) run in the first pass
# only: they go through the same readers, groups and producers as the
# tests named here, and both passes would take CI past half an hour.
SECURE_KAFKA_PKGS := $(sort $(dir $(shell grep -rlE --include='*_test.go' 'testkit[.](Kafka|SecureKafka)[^A-Za-z]' pkg services connectors)))
SECURE_KAFKA_E2E  := TestAdminReplayDeadLetters|TestChatDeliveriesSurviveSIGKILL|TestDrainUnderLoad|TestDrainWhileStarting

.PHONY: all build console console-test screenshots run test lint fuzz bench services docs clean image

all: lint test

build:
	$(GO) build -o $(BIN) ./cmd/switchboard

## console: the web console (web/console, Node.js 20 and npm) into web/console/dist, which
## the next build embeds; without it the binary serves a page saying to run this.
console:
	cd web/console && npm ci && npm run build

## console-test: the console's unit tests, its build (with the size check of the initial
## JavaScript) and its browser tests: web/console/e2e drives Debian's Chromium (installed
## when missing) against the binary with the console embedded, on a database of its own.
console-test: console
	$(MAKE) build
	scripts/services.sh postgres chromium
	cd web/console && npm test && SB_E2E_BINARY=$(CURDIR)/$(BIN) npm run test:e2e

## screenshots: the browser tests, saving the main screens into docs/screenshots.
screenshots: console
	$(MAKE) build
	scripts/services.sh postgres chromium
	cd web/console && SB_E2E_BINARY=$(CURDIR)/$(BIN) SB_SCREENSHOTS=$(CURDIR)/docs/screenshots npm run test:e2e

## run: the whole mesh in one process, with embedded Kafka and Redis, and the console at
## http://localhost:8080/; needs PostgreSQL.
run: console
	$(MAKE) build
	scripts/services.sh postgres
	./$(BIN) -target=all -log.format=text

## test: lint, every module's tests against real PostgreSQL and Redis (Kafka through kfake), again over TLS and SASL
## for those that talk to Kafka, the console's tests in a browser, brief fuzzing.
test: lint
	scripts/services.sh postgres redis dovecot poppler
	@set -e; for m in $(MODULES); do \
		echo "== test $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 15m $$($(GOPKGS))); \
	done
	@echo "== test, Kafka over TLS and SASL SCRAM"
	SB_TEST_KAFKA_SECURE=1 $(GO) test -count=1 -timeout 15m $(addprefix ./,$(SECURE_KAFKA_PKGS))
	cd cmd/switchboard && SB_TEST_KAFKA_SECURE=1 $(GO) test -count=1 -timeout 15m -run '^($(SECURE_KAFKA_E2E))$$' .
	$(MAKE) console-test
	$(MAKE) image
	@set -e; for m in $(TOOL_MODULES); do \
		echo "== test $$m"; \
		(cd $$m && GOWORK=off SB_TEST_IMAGE_BINARY=$(CURDIR)/bin/image/switchboard $(GO) test -count=1 -timeout 15m ./...); \
	done
	$(MAKE) fuzz

## fuzz: each fuzz target for FUZZTIME.
fuzz:
	GO=$(GO) scripts/fuzz.sh connectors/chat FuzzParse . $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh connectors/chat FuzzStatusWebhook . $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh connectors/email FuzzParse ./internal/mailparse $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh connectors/email FuzzUnpack ./internal/mailparse $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh connectors/email FuzzParseReplyAddress ./internal/threads $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh connectors/sms FuzzParseForm ./internal/inbound $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh pkg FuzzOpen ./seal $(FUZZTIME)

## lint: gofmt and go vet on every module.
lint:
	@out=$$(find $(MODULES) $(TOOL_MODULES) -name node_modules -prune -o -name '*.go' -print0 | xargs -0 gofmt -l); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet $$($(GOPKGS))); done
	@set -e; for m in $(TOOL_MODULES); do (cd $$m && GOWORK=off $(GO) vet ./...); done

## bench: the load benchmark of the all-in-one binary beside the machine's raw ceilings.
bench: build
	scripts/services.sh
	$(GO) run ./bench -binary $(BIN)

services:
	scripts/services.sh

## docs: regenerate docs/configuration.md from the flags.
docs:
	cd cmd/switchboard && SB_UPDATE_DOCS=1 $(GO) test -run TestConfigurationReferenceIsCurrent -count=1 .

## image: the container image without a container engine (deploy/cmd/imagebuild): an OCI
## layout in bin/image/oci and bin/image/switchboard.tar for `docker load`; prints its digest.
## Reproducible: the same commit gives the same digest. deploy/Dockerfile builds it with Docker.
IMAGE_REPO     ?= ghcr.io/switchboard-oss/switchboard
IMAGE_VERSION  ?= dev
IMAGE_ARCH     ?= amd64
IMAGE_CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_EPOCH    ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)

image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' -o bin/image/switchboard ./cmd/switchboard
	cd deploy && SOURCE_DATE_EPOCH=$(IMAGE_EPOCH) GOWORK=off $(GO) run ./cmd/imagebuild -binary ../bin/image/switchboard -arch $(IMAGE_ARCH) -ca-certs $(IMAGE_CA_CERTS) \
		-tag $(IMAGE_REPO):$(IMAGE_VERSION) -version $(IMAGE_VERSION) -revision "$(IMAGE_REVISION)" \
		-oci ../bin/image/oci -tar ../bin/image/switchboard.tar

clean:
	rm -rf bin switchboard-data
