# TradSys mesh. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions (installed into ./bin by `make tools`).
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
GOTESTSUM_VERSION := v1.13.0

# Every module of the workspace: `go test ./...` at the root matches nothing
# in a go.work workspace, so targets loop over these (or name ./<module>/...).
MODULES := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null | sed 's|$(CURDIR)/||')
PACKAGES := $(addsuffix /...,$(addprefix ./,$(MODULES)))
TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpcurl $(BIN)/gotestsum
SERVICES := $(notdir $(wildcard services/*))

.PHONY: help tools proto proto-check lint build test test-short bench run clean static images compose-test swarm-test fault-test

# `make help` prints every target that has a `## ` comment on its line.
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/make \1\t\2/' | expand -t 20

tools: $(TOOLS) ## install the pinned tools into ./bin (buf, protoc-gen-go[-grpc], grpcurl, gotestsum)

$(BIN)/buf:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(BIN)/gotestsum:
	GOBIN=$(BIN) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

proto: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## buf lint, then regenerate Go code from proto/
	buf lint
	buf generate

# Fails when the committed generated code differs from what buf generates.
proto-check: proto ## fail when the committed generated code is stale
	@git diff --exit-code -- proto || { echo "generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto | grep '^??')" || { echo "untracked generated files in proto/"; exit 1; }

lint: $(BIN)/buf ## buf lint, gofmt, go vet and go mod tidy -diff of every module
	buf lint
	@out=$$(grep -E '^[a-z][a-z-]*:' $(MAKEFILE_LIST) | grep -v '## '); test -z "$$out" || { echo "Makefile targets without a '## ' help text:"; echo "$$out"; exit 1; }
	@out=$$(gofmt -l $(MODULES)); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run go mod tidy there"; exit 1; }; done

build: ## build tradsys and every tradsys-<service> into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tradsys ./cmd/tradsys
	@for s in $(SERVICES); do \
		if ls services/$$s/*.go >/dev/null 2>&1; then \
			echo "build tradsys-$$s"; $(GO) build -o $(BIN)/tradsys-$$s ./services/$$s || exit 1; \
		fi; done

# Every package of every module in one run under -race: one line per
# package as it finishes, the failures' output, then one summary line
# ("DONE 812 tests, 3 skipped, 1 failure in 300.1s"). A failed test is run
# again (at most twice, and only when few failed): several tests hold real
# processes to real timeouts, and a 2-core machine under load can miss one.
# A rerun is printed ("DONE 2 runs, ..."), so a flaky test shows, and a test
# that fails three times fails the target.
test: tools lint proto-check ## tools, lint, proto check, then every module's tests under -race
	gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg --rerun-fails=2 --packages="$(PACKAGES)" -- -race -count=1 -timeout 15m

test-short: $(BIN)/gotestsum ## every module's tests with -short, no -race (quick check)
	gotestsum --format pkgname --format-hide-empty-pkg -- -short -count=1 $(PACKAGES)

# Every benchmark compares against its baseline in the same run and prints
# the ratio; results and commands are kept in docs/benchmarks.md.
bench: ## every benchmark against its baseline; results go in docs/benchmarks.md
	$(GO) run ./services/coordinator/cmd/coordbench --duration 3s
	cd tests && $(GO) run ./cmd/lazybench --cycles 200 --warm-calls 10000
	cd tests && $(GO) run ./cmd/lazymanybench --components 100 --registry 10000 --warm-calls 10000
	cd services/matching && $(GO) test -run '^$$' -bench 'EngineMix|EngineLatency' -benchtime 2s -cpu 1 ./engine/
	cd services/matching && $(GO) test -run '^$$' -bench E2E -benchtime 10000x ./server/
	cd services/historical && $(GO) test -run '^$$' -bench . -benchtime 1s -cpu 1 ./candles/
	cd services/historical && $(GO) test -run '^$$' -bench WireDay1m -benchtime 3000x ./server/
	cd pkg && $(GO) test -run '^$$' -bench Day1m -benchtime 2000x ./candlewire/
	cd services/connectors && $(GO) test -run '^$$' -bench . -benchtime 1s -cpu 1 ./feeds/
	cd services/gateway && $(GO) test -run '^$$' -bench 'WebSocketFanout|SubmitRoundTrip' -benchtime 50x ./server/

run: tools build ## tools, build, then start the local mesh in the foreground (tradsys up)
	$(BIN)/tradsys up --bin-dir $(BIN)

# The docker images, FROM scratch around static binaries (no registry to
# pull from): tradsys/etcd and tradsys/<service>, tagged $(TAG). Swarm runs
# the same local images (deploy/stack.yml).
TAG ?= dev
IMAGE_SERVICES = coordinator $(foreach s,$(SERVICES),$(if $(wildcard services/$(s)/*.go),$(filter-out coordinator,$(s))))
static: ## static binaries for the FROM scratch images in ./bin/static
	@mkdir -p $(BIN)/static
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/tradsys ./cmd/tradsys
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/etcd ./services/coordinator/cmd/etcd
	@for s in $(IMAGE_SERVICES); do \
		echo "build static tradsys-$$s"; CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/tradsys-$$s ./services/$$s || exit 1; \
	done

# (The legacy builder's deprecation notice is dropped; errors are kept.)
images: static ## build the docker images tradsys/etcd and tradsys/<service>, tagged $TAG (default dev)
	@for s in etcd $(IMAGE_SERVICES); do \
		f=deploy/Dockerfile; [ $$s = etcd ] && f=deploy/etcd.Dockerfile; \
		echo "image tradsys/$$s:$(TAG)"; \
		docker build -q -f $$f --build-arg BIN=tradsys-$$s -t tradsys/$$s:$(TAG) . 2>&1 >/dev/null | grep -v -e DEPRECATED -e buildx -e '^ *$$' >&2; \
		docker image inspect tradsys/$$s:$(TAG) >/dev/null || exit 1; \
	done

# The docker-compose mesh (3 etcd members, 2 coordinators) as its own
# project on free ports: comes up, serves, keeps its data across
# recreation, survives losing an etcd member and the coordinator leader.
compose-test: images $(BIN)/grpcurl ## the docker-compose mesh: up, serves, keeps data, survives failures
	bash deploy/compose-test.sh

# Faults on the containerised mesh (leader kill, etcd member kill, a
# service killed holding leases, leader paused), checked against the
# recorded histories (budget at every etcd revision, porcupine on locks).
fault-test: images ## faults on the compose mesh, checked against recorded histories
	bash deploy/fault-test.sh

# The same images as a Docker Swarm stack (deploy/stack.yml) on a one-node
# swarm (created and left if there is none): mTLS from swarm secrets,
# converges, an order end to end, a rolling update without a failed call.
swarm-test: images $(BIN)/grpcurl ## the Docker Swarm stack: converges, serves an order, rolls an update
	bash deploy/swarm-test.sh

clean: ## remove the built binaries and the local mesh state (.tradsys*)
	rm -rf $(BIN)/tradsys* .tradsys .tradsys-*
