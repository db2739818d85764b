# Cordon — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin
DATA      ?= ./cordon-data
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/cordon-mdm/cordon/internal/version.Version=$(VERSION)
# Pure Go everywhere: the agent must cross-compile without a C toolchain.
export CGO_ENABLED := 0

CROSS_TARGETS := linux/amd64 linux/arm64 darwin/arm64 windows/amd64 android/arm64
# The Go Cryptographic Module version with a FIPS 140-3 certificate, as
# listed in $(go env GOROOT)/lib/fips140/certified.txt.
FIPS_MODULE   := v1.0.0

.PHONY: run build build-fips test test-go test-fips fips-scan lint generate bench bench-full bench-agent cross cross-fips package fuzz clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The same three binaries on the FIPS 140-3 module, in FIPS mode by
# default (see README, "FIPS 140-3").
build-fips:
	GOFIPS140=$(FIPS_MODULE) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/fips/ ./cmd/...

# Starts the server with its data in $(DATA): CA, keys and SQLite are
# created on first start. Ctrl-C stops it.
run: build
	$(BIN)/cordon-server serve --data $(DATA)

# Everything CI checks: vet, the whole suite (SQLite and a real PostgreSQL
# started for the run), fuzz seeds, the agent's dependency guard, and the
# whole suite again as a FIPS build with non-approved algorithms fatal.
test: lint
	./scripts/with-test-services.sh $(MAKE) --no-print-directory test-go test-fips

# The browser test leaves screenshots of the console here for a person to
# look at (overview, device detail, incident).
TEST_OUTPUT := $(CURDIR)/test-output

test-go:
	CORDON_TEST_OUTPUT=$(TEST_OUTPUT) $(GO) test -count=1 -timeout 30m ./...
	@echo "Console screenshots from the browser test: $(TEST_OUTPUT)/console-screenshots/"

# Every test, the binaries the tests build included, on the FIPS module
# with GODEBUG=fips140=only: any non-approved algorithm fails the run.
test-fips:
	CORDON_TEST_OUTPUT=$(TEST_OUTPUT)/fips GOFIPS140=$(FIPS_MODULE) GODEBUG=fips140=only $(GO) test -count=1 -timeout 30m ./...
	@echo "Console screenshots from the browser test (FIPS build): $(TEST_OUTPUT)/fips/console-screenshots/"

# Prints what sslscan sees on both listeners of a FIPS-mode server (the
# test also fails on any non-approved protocol, suite or group).
fips-scan:
	$(GO) test -count=1 -run 'TestFIPSBuild$$' -v ./integration/ | sed -n '/sslscan of/,/^=== RUN\|^--- /p'

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Regenerates the Go API client (apiclient/client.gen.go) from
# server/api/openapi.json with oapi-codegen, pinned as a tool in go.mod;
# apiclient's test fails until the result is committed.
generate:
	$(GO) generate ./apiclient

# One table: the real cordon-server binary against BENCH_AGENTS real
# agents in simulator processes (cmd/cordon-sim), beside a bare
# gorilla/websocket + crypto/tls server measured in the same run (see
# bench/ and the README's performance section). The enrolled fleet is
# kept in BENCH_CACHE (default ~/.cache/cordon-bench) and reused.
BENCH_AGENTS ?= 10000
bench:
	BENCH_AGENTS=$(BENCH_AGENTS) $(GO) test -run '^$$' -bench '^BenchmarkFleet$$' -benchtime 1x -timeout 90m ./bench/

# 100,000 agents on six server processes on one PostgreSQL, 16,667 each
# (a process here may open 20,000 files, and each also needs its
# listeners, database connections and logs, so five cannot hold 20,000
# each), ten simulator processes.
# BENCH_DATABASE=postgres://... uses that database (and keeps the enrolled
# fleet for the next run); without it a fresh PostgreSQL is started for
# the run by scripts/with-test-services.sh and the fleet enrolled again.
BENCH_FULL_AGENTS  ?= 100000
BENCH_FULL_SERVERS ?= 6
bench-full:
	./scripts/with-test-services.sh sh -c 'BENCH_DATABASE="$${BENCH_DATABASE:-$$CORDON_TEST_POSTGRES}" \
	  BENCH_AGENTS=$(BENCH_FULL_AGENTS) BENCH_SERVERS=$(BENCH_FULL_SERVERS) \
	  BENCH_CONNECT_WAIT=$${BENCH_CONNECT_WAIT:-30m} BENCH_STORM_WAIT=$${BENCH_STORM_WAIT:-5m} \
	  $(GO) test -run "^$$" -bench "^BenchmarkFleet$$" -benchtime 1x -timeout 4h ./bench/'

# The agent's own costs: a posture collection, an hour of a deployed agent.
bench-agent:
	$(GO) test -run '^$$' -bench 'BenchmarkCollection|BenchmarkAgentHour' -benchtime 1x -timeout 30m ./bench/

# Short coverage-guided runs of every fuzz test in the repository (found
# with go test -list, so a new decoder's fuzzer is included by itself).
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

cross:
	@set -e; for t in $(CROSS_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "cordon-agent $$os/$$arch"; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o dist/cordon-agent-$$os-$$arch$$ext ./cmd/cordon-agent; \
	done
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/ ./cmd/cordon-server ./cmd/cordonctl

cross-fips:
	@set -e; for t in $(CROSS_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "cordon-agent $$os/$$arch (FIPS $(FIPS_MODULE))"; \
	  GOFIPS140=$(FIPS_MODULE) GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o dist/fips/cordon-agent-$$os-$$arch$$ext ./cmd/cordon-agent; \
	done
	GOFIPS140=$(FIPS_MODULE) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/fips/ ./cmd/cordon-server ./cmd/cordonctl

# The release artifacts, written to dist/: the agent and server .deb and
# .rpm for linux/amd64 and linux/arm64 (nfpm as a Go library, no outside
# tool), and the agent for macOS (darwin/arm64, darwin/amd64, .tar.gz) and
# Windows (windows/amd64, .zip), each with an INSTALL.txt.
package:
	$(GO) run ./internal/tools/pkgbuild -out dist -version '$(VERSION)'

clean:
	rm -rf $(BIN) dist test-output
