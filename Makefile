# Airlock. `make run` starts the whole system locally; `make test` runs every test.
GO      ?= go
BINDIR  := bin
CMDS    := ./intake/cmd/intake ./transfer/cmd/transfer ./clinical/cmd/clinical
# Tests clone databases from this server (a superuser login).
export AIRLOCK_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0

.PHONY: build run demo-reset test lint bench fuzz clean deploy-test deploy-check

build:
	@mkdir -p $(BINDIR)
	$(GO) build -trimpath -o $(BINDIR)/ $(CMDS)

run: build
	./deploy/dev/run.sh

# The demo afresh: drops the two demo databases and .dev/, then runs as `make run`.
demo-reset: build
	./deploy/dev/run.sh --reset

test:
	$(GO) test -race -count=1 -shuffle=on -timeout 30m ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...
	@# govulncheck needs vuln.go.dev; say so plainly where it is out of reach.
	@if curl -fsS -m 5 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then \
		$(GO) run $(GOVULNCHECK) ./... ; \
	else echo "govulncheck skipped: vuln.go.dev is not reachable from this machine"; fi

# Every benchmark once, then one table of the figures against their targets;
# each baseline is the database's own ceiling measured in the same run.
# AIRLOCK_BENCH_3M=1 adds the 3M-row list/search point, AIRLOCK_BENCH_BACKLOG=1
# the 120 x 5 MiB `transfer once` memory figure (each several minutes more).
bench:
	@st=$$(mktemp); { $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./... 2>&1; echo $$? > $$st; } \
		| $(GO) run ./internal/benchtable; code=$$(cat $$st); rm -f $$st; exit $$code

clean:
	rm -rf $(BINDIR)

# The production topology in network namespaces (root; see deploy/test/run.sh).
deploy-test:
	./deploy/test/run.sh

# Static checks of deploy/: systemd units (systemd-analyze), alert rules (promtool).
deploy-check:
	./deploy/check.sh
