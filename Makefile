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

# Every module of the workspace: `go test ./...` at the root matches nothing
# in a go.work workspace, so targets loop over these.
MODULES := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null | sed 's|$(CURDIR)/||')
SERVICES := $(notdir $(wildcard services/*))

.PHONY: help tools proto proto-check lint build test test-short bench run clean static images compose-test swarm-test

help:
	@echo "make run        build everything and start the local mesh (tradsys up)"
	@echo "make test       lint, proto check, and every module's tests with -race"
	@echo "make bench      benchmarks; results go in docs/benchmarks.md"
	@echo "make proto      regenerate Go code from proto/ with buf"
	@echo "make build      build every binary into ./bin"
	@echo "make images     build the docker images (tradsys/<service>:\$$TAG, default dev)"
	@echo "make compose-test  docker-compose mesh: up, healthy, serves, keeps data, survives failures"
	@echo "make swarm-test    the same images as a Docker Swarm stack: converges, serves, rolls an update"

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpcurl

$(BIN)/buf:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

proto: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
	buf lint
	buf generate

# Fails when the committed generated code differs from what buf generates.
proto-check: proto
	@git diff --exit-code -- proto || { echo "generated code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto | grep '^??')" || { echo "untracked generated files in proto/"; exit 1; }

lint: $(BIN)/buf
	buf lint
	@out=$$(gofmt -l $(MODULES)); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tradsys ./cmd/tradsys
	@for s in $(SERVICES); do \
		if ls services/$$s/*.go >/dev/null 2>&1; then \
			echo "build tradsys-$$s"; $(GO) build -o $(BIN)/tradsys-$$s ./services/$$s || exit 1; \
		fi; done

# Every module is tested even when one fails, so one run shows everything.
test: lint proto-check
	@failed=""; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 -timeout 15m ./...) || failed="$$failed $$m"; done; \
	if [ -n "$$failed" ]; then echo "FAILED modules:$$failed"; exit 1; fi

test-short:
	@for m in $(MODULES); do (cd $$m && $(GO) test -short -count=1 ./...) || exit 1; done

# Every benchmark compares against its baseline in the same run and prints
# the ratio; results and commands are kept in docs/benchmarks.md.
bench:
	$(GO) run ./services/coordinator/cmd/coordbench --duration 3s
	cd pkg && $(GO) run ./lazy/internal/lazybench --cycles 200 --warm-calls 10000
	cd services/matching && $(GO) test -run '^$$' -bench 'EngineMix|EngineLatency' -benchtime 2s -cpu 1 ./engine/
	cd services/matching && $(GO) test -run '^$$' -bench E2E -benchtime 10000x ./server/
	cd services/historical && $(GO) test -run '^$$' -bench . -benchtime 1s -cpu 1 ./candles/
	cd services/connectors && $(GO) test -run '^$$' -bench . -benchtime 1s -cpu 1 ./feeds/

run: build
	$(BIN)/tradsys up --bin-dir $(BIN)

# The docker images, FROM scratch around static binaries (no registry to
# pull from): tradsys/etcd and tradsys/<service>, tagged $(TAG). Swarm runs
# the same local images (deploy/stack.yml).
TAG ?= dev
IMAGE_SERVICES = coordinator $(foreach s,$(SERVICES),$(if $(wildcard services/$(s)/*.go),$(filter-out coordinator,$(s))))
static:
	@mkdir -p $(BIN)/static
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/tradsys ./cmd/tradsys
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/etcd ./services/coordinator/cmd/etcd
	@for s in $(IMAGE_SERVICES); do \
		echo "build static tradsys-$$s"; CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/static/tradsys-$$s ./services/$$s || exit 1; \
	done

images: static
	docker build -q -f deploy/etcd.Dockerfile -t tradsys/etcd:$(TAG) .
	@for s in $(IMAGE_SERVICES); do \
		echo "image tradsys/$$s:$(TAG)"; docker build -q -f deploy/Dockerfile --build-arg BIN=tradsys-$$s -t tradsys/$$s:$(TAG) . >/dev/null || exit 1; \
	done

# The docker-compose mesh (3 etcd members, 2 coordinators) as its own
# project on free ports: comes up, serves, keeps its data across
# recreation, survives losing an etcd member and the coordinator leader.
compose-test: images $(BIN)/grpcurl
	bash deploy/compose-test.sh

# The same images as a Docker Swarm stack (deploy/stack.yml) on a one-node
# swarm: converges, serves an order, rolls an update without a failed call.
swarm-test: images $(BIN)/grpcurl
	bash deploy/swarm-test.sh

clean:
	rm -rf $(BIN)/tradsys* .tradsys
