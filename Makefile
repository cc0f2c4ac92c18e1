# wasmkube — see README.md. `make run` and `make test` are the two entry points.
SHELL := /bin/bash
GO ?= go
BIN := bin/wasmkube
DATA_DIR ?= $(CURDIR)/.data
K8S_VERSION := $(shell $(GO) list -m -f '{{.Version}}' k8s.io/api 2>/dev/null | sed 's/^v0\./v1./')
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
WASMKUBE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BUILD_DATE := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
LDFLAGS := -s -w \
	-X github.com/wasmkube/wasmkube/internal/version.Version=$(WASMKUBE_VERSION) \
	-X github.com/wasmkube/wasmkube/internal/version.Kubernetes=$(K8S_VERSION) \
	$(foreach p,$(VERSION_PKGS),-X $(p).gitVersion=$(K8S_VERSION)+wasmkube -X $(p).gitMajor=1 -X $(p).gitMinor=$(K8S_MINOR) -X $(p).gitTreeState=clean -X $(p).buildDate=$(BUILD_DATE))
TEST_TIMEOUT ?= 25m

.PHONY: all build run test bench generate lint deps clean

all: build

# deps installs what the node needs from Debian's packages; it does nothing when
# everything is already there.
deps:
	@./internal/scripts/deps.sh

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wasmkube
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/wasmkube-sandbox ./cmd/wasmkube-sandbox

run: deps build
	./$(BIN) up --data-dir $(DATA_DIR)

test: deps build
	$(GO) vet ./...
	WASMKUBE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

bench: deps build
	WASMKUBE_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

# generate rebuilds the committed BPF objects and their Go bindings (ebpf/,
# installing clang and libbpf's headers when they are missing) and every
# other generated file.
generate:
	@./internal/scripts/generate.sh
	$(GO) generate ./ebpf/...
	$(GO) generate $$($(GO) list ./... | grep -v /ebpf/)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
