# lrap — the two commands for a fresh machine:
#   make demo   a real function behind lrap under the Lambda emulator
#   make test   every test (what CI runs)
# Each installs what it needs (the pinned Go toolchain, the emulator,
# staticcheck) through the Go module proxy.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# go.mod pins the toolchain (go1.26.11: net/http and crypto/x509 fixes that
# go1.26.8 lacks); "auto" lets the go command fetch it where go.env says local.
export GOTOOLCHAIN := auto
GO ?= go

CACHE := $(CURDIR)/.cache
TOOLS := $(CACHE)/bin
STATICCHECK_VERSION := v0.8.2
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE_PKG := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

# The layer binary: static, no build paths, no symbols.
BUILD_FLAGS := -trimpath -ldflags "-s -w"
GO_SOURCES := $(shell find . -name '*.go' -not -path './test/*' -not -path './.cache/*') go.mod

.PHONY: all build cross demo test unit lint e2e tools clean bench bench-quick bench-micro

all: build

build: bin/lrap

bin/lrap: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $@ ./cmd/lrap

# Both architectures Lambda offers, into $(CROSS_DIR)/linux-<arch>/lrap.
CROSS_DIR ?= bin
cross: $(GO_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(BUILD_FLAGS) -o $(CROSS_DIR)/linux-amd64/lrap ./cmd/lrap
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(CROSS_DIR)/linux-arm64/lrap ./cmd/lrap
	@ls -l $(CROSS_DIR)/linux-*/lrap

bin/function: $(wildcard test/e2e/function/*.go) test/e2e/function/go.mod
	cd test/e2e/function && CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(CURDIR)/bin/function .

$(TOOLS)/aws-lambda-rie:
	GOBIN=$(TOOLS) $(GO) install $(RIE_PKG)@$(RIE_VERSION)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/aws-lambda-rie $(TOOLS)/staticcheck

# A sample function behind lrap under the Lambda Runtime Interface Emulator:
# invokes it, shows what crossed the proxy, and compares latency with the
# direct path. Linux; root or unprivileged user namespaces.
demo: bin/lrap bin/function $(TOOLS)/aws-lambda-rie
	$(GO) run ./cmd/lrap-demo -bin bin -lrap bin/lrap -wrapper layer/lrap-wrapper \
		-function bin/function -rie $(TOOLS)/aws-lambda-rie

lint: $(TOOLS)/staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	cd test/e2e/function && $(GO) vet ./... && $(TOOLS)/staticcheck ./...
	sh -n layer/lrap-wrapper test/e2e/curl-runtime/bootstrap

# Every test: unit and integration (with -race) and the end-to-end tests
# with the real emulator. Prints the go test summary and a count.
test: lint $(TOOLS)/aws-lambda-rie
	LRAP_E2E_RIE_DIR=$(TOOLS) scripts/gotest.sh -race -count=1 ./...

unit:
	$(GO) test -race -count=1 -short ./...

e2e: $(TOOLS)/aws-lambda-rie
	LRAP_E2E_RIE_DIR=$(TOOLS) $(GO) test -count=1 -v ./test/e2e/

# lrap vs no proxy vs a plain httputil.ReverseProxy, interleaved in one run
# (about 1.5 min on 2 cores). Writes bench/results/latest/ and the generated
# section of BENCHMARKS.md.
bench:
	$(GO) run ./cmd/lrap-bench -go $(GO) -out bench/results/latest -doc BENCHMARKS.md

# Smoke run of the benchmark itself, a few seconds; figures not asserted.
bench-quick:
	$(GO) run ./cmd/lrap-bench -go $(GO) -quick

bench-micro:
	$(GO) test -run '^$$' -bench Cycle -benchmem ./internal/proxy

clean:
	rm -rf bin dist
