# loyaltyhub — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/loyaltyhub
PKGS     := ./...
# The slow soak tests (many crash/restart cycles) run with `make soak`;
# `make test` runs everything else, integration tests included.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: all build run test test-race soak bench fuzz vet proto clean

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

## bench: throughput and cost figures (end to end, mapping, store, bus, plugins).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./cmd/loyaltyhub/
	$(GO) test -run '^$$' -bench . -timeout 30m ./pipeline/... ./mappings/...

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin data
