# regshift — `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

DEPS_DIR ?= $(CURDIR)/.deps
GO       ?= go
GOTEST_FLAGS ?= -race -count=1 -timeout 20m
# `make test` never skips a test for a missing server: it fails and says so.
export REGSHIFT_REQUIRE_SERVERS ?= 1

.PHONY: help deps deps-demo demo-zookeeper up down status demo demo-fail test unit itest smoke bench bench-fleet lint fmt images compose-up compose-down

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install all the tests need: Kafka, ZooKeeper, Consul, etcd, Eureka, Docker engine + base image, Chromium, staticcheck (idempotent)
	@bash scripts/deps.sh all

deps-demo: ## install only what `make demo` needs: Debian's ZooKeeper, the Consul binary, the command's Go modules (idempotent)
	@bash scripts/deps.sh demo

up: ## start ZooKeeper, Kafka, Consul, etcd, Eureka and dockerd on 127.0.0.1 (skips what runs)
	@bash scripts/services.sh up

down: ## stop every service `make up` (or `make demo`) started, by PID
	@bash scripts/services.sh down

status: ## show which services run and answer
	@bash scripts/services.sh status

# The demo runs on an embedded Kafka broker unless KAFKA names brokers
# (`make up` starts one: KAFKA=127.0.0.1:9092). Its only server is a
# ZooKeeper, started when none of ours runs and left running for the next
# demo; `make down` stops it.
KAFKA ?=
DEMO_ZK   = 127.0.0.1:$${REGSHIFT_ZK_PORT:-2181}
DEMO      = $(GO) run ./cmd/regshift demo -zookeeper $(DEMO_ZK) $(if $(KAFKA),-kafka $(KAFKA))
DEMO_NOTE = [demo] ZooKeeper $(DEMO_ZK) stays up for the next demo: \`make down\` stops it
DEMO_DONE = rc=$$?; echo "$(DEMO_NOTE)"; exit $$rc

demo-zookeeper: deps-demo
	@bash scripts/services.sh up zookeeper
	@echo "$(DEMO_NOTE)"

demo: demo-zookeeper ## migrate a live demo fleet from ZooKeeper to Consul on an embedded Kafka broker (KAFKA=host:port: a real one), with a report (the README's first command)
	@$(DEMO); $(DEMO_DONE)

demo-fail: demo-zookeeper ## the failure demo: Consul dies under the consumer wave (FAIL=app: the canary provider's app fails its check); all switch back
	@$(DEMO) -fail $${FAIL:-consul}; $(DEMO_DONE)

test: deps up ## install, start the servers, run every test (the README's test command)
	$(GO) test $(GOTEST_FLAGS) ./...

unit: ## run the tests without starting servers; those that need one skip (outside CI)
	REGSHIFT_REQUIRE_SERVERS=0 $(GO) test $(GOTEST_FLAGS) ./...

itest: deps up images ## run the integration suites under itest/, the container suite too (-tags containers)
	$(GO) test $(GOTEST_FLAGS) -tags containers -timeout 40m ./itest/...

images: ## build the local container images (Kafka, ZooKeeper, Consul, etcd, regshift); skips what is up to date
	@bash scripts/images.sh

COMPOSE ?= docker-compose
compose-up: deps images ## start the whole stack and a sample fleet from compose/ (host network, own ports); compose/up.sh --rollout also migrates it
	@bash compose/up.sh

compose-down: ## stop and remove the compose stack and its volumes
	$(COMPOSE) -f compose/docker-compose.yml -p regshift down -v

bench: deps up ## run the benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-fleet: ## one rollout to NODES simulated agents (default 1000) on an embedded broker, with its figures (docs/performance.md)
	$(GO) run ./cmd/regshift bench fleet -nodes $${NODES:-1000}

lint: ## go.mod tidy check, gofmt check, go vet, staticcheck
	@out="$$($(GO) mod tidy -diff)"; rc=$$?; if [[ $$rc -ne 0 || -n "$$out" ]]; then echo "$$out"; echo "go.mod/go.sum are not tidy: run \`go mod tidy\` and commit the result"; exit 1; fi
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(DEPS_DIR)/bin/staticcheck || bash scripts/deps.sh
	$(DEPS_DIR)/bin/staticcheck ./...

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

# A count, not a duration: with a -fuzztime duration Go 1.26's fuzz coordinator can
# report "context deadline exceeded" at the deadline with no failing input
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 50000x
FUZZ_TARGETS := ./schema:FuzzDecode ./schema:FuzzFastAgreesWithSchema ./events:FuzzCommandVerify ./events:FuzzRequestVerify ./events:FuzzEnvelope
.PHONY: fuzz
fuzz: ## run every fuzz target briefly (FUZZTIME executions each, default 50000x), seeds in testdata
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done
