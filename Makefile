# loyaltyhub — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/loyaltyhub
PKGS     := ./...
# The slow soak tests (many crash/restart cycles) run with `make soak`;
# `make test` runs everything else, integration tests included.
TESTFLAGS ?= -count=1 -timeout 20m

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

.PHONY: all build run test test-race soak chaos bench fuzz vet proto clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/loyaltyhub

## run: the hub on embedded defaults, with the Salesforce emulator and ledger traffic.
run: build
	./$(BIN) demo -c config/example.yaml

## test: vet, then every test (integration tests skip without their services).
test: vet
	$(GO) test $(TESTFLAGS) $(PKGS)

test-race:
	$(GO) test -race $(TESTFLAGS) $(PKGS)

## soak: the long crash/restart tests kept out of `make test` by -short.
soak:
	LOYALTYHUB_SOAK=1 $(GO) test -count=1 -timeout 60m -run 'Soak' $(PKGS)

## chaos: the full chaos test (LOYALTYHUB_CHAOS=full); `make test` runs its short form.
chaos:
	LOYALTYHUB_CHAOS=full $(GO) test -count=1 -timeout 90m -v -run '^TestChaos$$' ./cmd/loyaltyhub/

## bench: throughput and cost figures (end to end, mapping, store, bus, plugin boundary).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./cmd/loyaltyhub/
	$(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m ./mappings/
	$(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m ./pipeline/...
	$(GO) test -run '^$$' -bench BenchmarkWrite -benchtime 2s -timeout 30m ./plugins/host/

## fuzz: every fuzz target, one after another, FUZZTIME each (default 5m).
FUZZTIME ?= 5m
FUZZ_TARGETS := \
	./openapi/:FuzzIngressStructured ./openapi/:FuzzIngressBatch ./openapi/:FuzzIngressBinary \
	./config/:FuzzConfigLoad ./connectors/:FuzzKeysCaseInsensitiveFold \
	./connectors/salesforce/emulator/:FuzzSOQL ./connectors/salesforce/emulator/:FuzzBulkCSV \
	./mappings/:FuzzExtract ./mappings/:FuzzCompileApply ./mappings/:FuzzNativeMatchesVM
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg; done

## proto: regenerate the plugin protocol's Go code from plugins/proto/connector.proto.
proto:
	command -v protoc >/dev/null || (apt-get update && apt-get install -y protobuf-compiler)
	GOFLAGS= $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOFLAGS= $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" plugins/gen.sh

## vet: gofmt must have nothing to say, then go vet.
vet:
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt -w needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin data
