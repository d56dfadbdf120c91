# posagent — make targets a newcomer can guess. See README.md.
GO          ?= go
PKGS        ?= ./...
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS     := -s -w -X main.version=$(VERSION)
BIN         := bin
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 20s
# The fuzz targets: package and function, one per line of `make fuzz`.
FUZZ_TARGETS := ./qr:FuzzParseMPM ./qr:FuzzBuildMPM ./qr:FuzzClassify ./qr:FuzzDecodeCPM ./qr:FuzzDecodeTLV ./qr:FuzzDecodeImage ./qr:FuzzReadImage ./sync/signing:FuzzVerify ./sync/acquirer:FuzzServer_Decode ./drivers/scanner:FuzzFramer ./drivers/hid:FuzzDecodeEvents ./drivers/camera:FuzzFrameLayout .:FuzzDecodeReceipt ./drivers/escpos:FuzzDecodeStatus ./internal/possim:FuzzParseESCPOS ./internal/possim:FuzzLEDDisplay ./offline:FuzzEntryDecode ./offline:FuzzParsePolicy ./device:FuzzDecodeJSON ./sync/uplink:FuzzParseRetryAfter ./internal/update:FuzzVerify

.PHONY: all build test bench lint fuzz cross test-arm clean soak deb

all: build

## build: the binaries for this machine, in bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## demo: the agent doing its main job: acquirerd (SQLite), possim and posagent run on loopback in a temporary
##       directory, a scripted checkout session through the local API, the story printed. KEEP=1 leaves it running.
.PHONY: demo
KEEP ?=
demo: build
	$(BIN)/posagent-demo --bin $(BIN) --config configs/demo.yaml $(if $(filter-out 0,$(KEEP)),--keep)

## test: the whole suite with the race detector
test:
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

## bench: the figures: MPM parse/build, render, decode per 640x480 frame, decode success by distortion (with zbarimg),
##        journal store p50/p99 beside a bare go-sqlite3 insert (the floor) and the crypto+chain cost (offline BenchmarkStore),
##        records/s to drain 10,000 queued records to the acquirer endpoint on loopback (sync/uplink BenchmarkDrain), online
##        authorization round trip beside a bare HTTP round trip in the same run (sync/uplink BenchmarkAuthorize: overhead-µs),
##        acquirer batch ingest records/s on SQLite beside PostgreSQL, one terminal and eight at once (sync/acquirer
##        BenchmarkStore_Batch; the PostgreSQL half runs when POSAGENT_PG_DSN names a database), the acquirer's ledger
##        entries/s over 20,000 sales and its status and reversal µs (BenchmarkStore_Ledger, both stores), the agent's scanner-to-approved
##        time on the display and in the event stream (online/offline, p50/p99, minus the acquirer's own time), its memory at
##        rest and after 10,000 sales, and start-up time to ready (device Benchmark*), wire bytes and print time of a receipt
##        (drivers/escpos), unplug-to-reconnect time (drivers/serial, internal/possim)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(PKGS)
	POSAGENT_REPORT=1 $(GO) test -count=1 -run '^TestDistortionReport$$' -v ./qr

## fleet: the fleet figures: fleetsim's 1,000 terminals × 100 records reconnecting at once against acquirerd on
##        SQLite, and when POSAGENT_PG_DSN names a database, on PostgreSQL with one node and with two nodes sharing it;
##        records/s, batch latency p50/p99, 429s, and what `acquirerd ledger` holds (TERMINALS, RECORDS, CONCURRENCY,
##        STORES="sqlite postgres"; the PostgreSQL database must be empty or made with FLEET_MASTER_KEY's key)
.PHONY: fleet
fleet: build
	TERMINALS=$(or $(TERMINALS),1000) RECORDS=$(or $(RECORDS),100) CONCURRENCY=$(or $(CONCURRENCY),0) \
	  STORES="$(or $(STORES),sqlite postgres)" cmd/fleetsim/fleet.sh $(BIN)

## soak: the journal's kill -9 crash test at length (SOAK_ITERATIONS kills; make test runs 200)
SOAK_ITERATIONS ?= 2000
soak:
	POSAGENT_CRASH_ITERATIONS=$(SOAK_ITERATIONS) $(GO) test -race -count=1 -run '^TestJournal_CrashKill9$$' -timeout 2h -v ./offline/

## lint: gofmt -s, go vet, staticcheck
lint:
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## openapi: validate the acquirer protocol (sync/openapi.yaml) and the local API (device/openapi.yaml) as OpenAPI 3
##          with Redocly's CLI (pinned; run by npx, its cache in NPM_CACHE, outside the tree). Needs node and npm.
REDOCLY   ?= @redocly/cli@1.34.5
NPM_CACHE ?= $(or $(TMPDIR),/tmp)/posagent-npm-cache
OPENAPI   := sync/openapi.yaml device/openapi.yaml
.PHONY: openapi
openapi:
	npm_config_cache='$(NPM_CACHE)' npm_config_update_notifier=false REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --yes $(REDOCLY) lint --format stylish $(OPENAPI)

## possim-clientjobs: remake possim's golden ESC/POS jobs (internal/possim/testdata/clientjobs/golden) with the real
##                    client libraries @point-of-sale/receipt-printer-encoder and node-escpos, pinned by the package-lock.json there and
##                    installed by npm ci into a temporary directory (cache in NPM_CACHE). Needs node and npm.
CLIENTJOBS := internal/possim/testdata/clientjobs
.PHONY: possim-clientjobs
possim-clientjobs:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		cp $(CLIENTJOBS)/package.json $(CLIENTJOBS)/package-lock.json $(CLIENTJOBS)/*.mjs "$$tmp"/ && \
		(cd "$$tmp" && npm_config_cache='$(NPM_CACHE)' npm_config_update_notifier=false npm ci --no-audit --no-fund --ignore-scripts >/dev/null) && \
		node "$$tmp"/jobs.mjs $(CLIENTJOBS)/golden && node "$$tmp"/jobs-escpos.mjs $(CLIENTJOBS)/golden && echo "$(CLIENTJOBS)/golden"

## fuzz: run every fuzz target for FUZZTIME each (seed corpora live in testdata/fuzz)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; done

## cross: build for the terminals: linux/arm64 and linux/arm (ARMv7), cgo through Debian's cross compilers
cross:
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/ ./cmd/...
	CGO_ENABLED=1 GOOS=linux GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-armv7/ ./cmd/...

## test-arm: the suite on arm64 and ARMv7 under qemu-user (-short: fewer crash-test kills under emulation)
QEMU_ARM64 := qemu-aarch64-static -L /usr/aarch64-linux-gnu
QEMU_ARMV7 := qemu-arm-static -L /usr/arm-linux-gnueabihf
test-arm:
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc POSAGENT_TEST_EXEC='$(QEMU_ARM64)' \
		$(GO) test -short -count=1 -timeout 15m -exec '$(QEMU_ARM64)' $(PKGS)
	CGO_ENABLED=1 GOOS=linux GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc POSAGENT_TEST_EXEC='$(QEMU_ARMV7)' \
		$(GO) test -short -count=1 -timeout 15m -exec '$(QEMU_ARMV7)' $(PKGS)

## deb: Debian packages in dist/: posagent for amd64, arm64 and armhf, acquirerd for amd64 and arm64 (binary,
##      systemd unit, system user, conffiles in /etc; see packaging/ and README "Install on a terminal").
##      nfpm is built from its pinned Go module into bin/; the version comes from git (packaging/version.sh).
NFPM        ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DIST        := dist
DEB_VERSION  = $(shell packaging/version.sh)
DEBS        := posagent:amd64:linux-amd64 posagent:arm64:linux-arm64 posagent:armhf:linux-armv7 \
               acquirerd:amd64:linux-amd64 acquirerd:arm64:linux-arm64
deb: cross
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 CC=$(if $(filter amd64,$(shell $(GO) env GOHOSTARCH)),gcc,x86_64-linux-gnu-gcc) \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/ ./cmd/posagent ./cmd/acquirerd
	GOBIN='$(abspath $(BIN))' $(GO) install $(NFPM)
	@mkdir -p $(DIST); set -e; v='$(DEB_VERSION)'; for d in $(DEBS); do \
		name=$${d%%:*}; rest=$${d#*:}; arch=$${rest%%:*}; dir=$${rest#*:}; \
		rm -f $(DIST)/$${name}_*_$$arch.deb; \
		sed "s|\$${BINDIR}|$(BIN)/$$dir|" packaging/$$name.nfpm.yaml > $(BIN)/$$name-$$arch.nfpm.yaml; \
		ARCH=$$arch VERSION=$$v $(BIN)/nfpm package --config $(BIN)/$$name-$$arch.nfpm.yaml \
			--packager deb --target $(DIST)/ >/dev/null; \
		echo "$(DIST)/$${name}_$${v}_$$arch.deb"; done

clean:
	rm -rf $(BIN) $(DIST)
