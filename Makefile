# Developer entry points. CI runs .ci/run (which also starts PostgreSQL).
#
#   make test         unit and integration tests with the race detector
#   make lint         gofmt, go vet, and staticcheck when it is installed
#   make fuzz         every fuzz target for FUZZTIME (default 60s) each
#   make build        the kinehook binary in ./bin
#   make release      static binaries for linux/darwin/windows on amd64/arm64 and SHA256SUMS in ./dist
#   make docker       the container image kinehook:$(VERSION) (needs a Docker daemon)

GO       ?= go
PKGS     ?= ./...
FUZZTIME ?= 60s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/kinehook/kinehook/internal/buildinfo.version=$(VERSION) -X github.com/kinehook/kinehook/internal/buildinfo.commit=$(COMMIT)

.PHONY: all build release docker test test-short lint fmt fuzz fuzz-list clean

all: lint test

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/kinehook ./cmd/kinehook

release:
	GO=$(GO) VERSION=$(VERSION) COMMIT=$(COMMIT) scripts/release.sh

docker:
	docker build -t kinehook:$(VERSION) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) .

test:
	$(GO) test -race -count=1 -timeout 40m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck $(PKGS); else echo "staticcheck not installed; skipped"; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

fuzz-list:
	@scripts/fuzz.sh -l

clean:
	rm -rf bin dist
