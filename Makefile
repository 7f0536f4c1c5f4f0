# archmerge: plain Makefile. `make` builds, `make check` is the inner loop
# (build, unit tests, the fastest integration tests), `make test` installs
# what is missing and runs every check (the integration suite once, on the
# ASan+UBSan build), `make demo` shows the main job on a local registry.

CC       ?= cc
VERSION  := 0.1.0
PREFIX   ?= /usr/local
SANITIZE ?= 0
BUILD    ?= build

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Werror \
            -DARCHMERGE_VERSION='"$(VERSION)"' -I. -MMD -MP
LDLIBS   += -lcivetweb -lcurl -ljansson -lconfig -lssl -lcrypto -lpthread -ldl

ifeq ($(SANITIZE),1)
BUILD    := build-san
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

# See server/tls_compat.c: the executable answers CivetWeb's dlopen("libssl.so").
BIN_LDFLAGS := -Wl,-soname,libssl.so -Wl,--dynamic-list=server/tls_compat.list

# Product code: every .c below the four source folders. server/cmd/ (the
# command line, main.c's table) is linked into the executable only; the rest
# is the library the unit tests and fuzz targets link against.
SRC_DIRS := server handlers registry config
ALL_SRCS := $(sort $(shell find $(SRC_DIRS) -name '*.c'))
CMD_SRCS := $(filter server/cmd/%.c, $(ALL_SRCS))
LIB_SRCS := $(filter-out server/cmd/%.c, $(ALL_SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(sort $(shell find tests/unit -name 'test_*.c' 2>/dev/null))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

BIN := $(if $(filter 1,$(SANITIZE)),archmerge-san,archmerge)

.PHONY: all deps test check unit unit-bins integration smoke demo clean install check-banned check-layers check-docs bench image verify-deploy verify-systemd verify-compose

all: $(BIN)

$(BIN): $(CMD_OBJS) $(LIB_OBJS) server/tls_compat.list
	$(CC) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $(CMD_OBJS) $(LIB_OBJS) $(LDLIBS)

# Header dependencies come from the compiler (-MMD -MP: $(BUILD)/**/*.d).
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-function $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Installs the Debian packages the build and the tests need, only when missing.
deps:
	@./tests/deps.sh

unit-bins: $(UNIT_BINS)

unit: $(UNIT_BINS)
	@./tests/run-unit.sh $(UNIT_BINS)

JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
# One pytest-xdist worker more than cores for the parallel integration tests:
# they spend most of their time waiting (on a registry, a log line, a peer's
# SYN retries), and one of them alone waits 3.5 minutes.
IT_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))
PYTEST  := /usr/bin/python3 -m pytest -q -p no:cacheprovider
# Prints a stage of `make test` / `make check` with the time it starts.
STAGE    = @echo "== $(1) ($$(date +%T))"

# The integration suite: the tests that may share the machine on $(IT_JOBS)
# pytest-xdist workers (each brings up its own registry on free ports), then
# the `serial` ones alone (tests/integration/conftest.py SERIAL says why);
# the serial ones that assert the product's latency (LATENCY there) run on the
# plain build, whichever build the rest ran on.
integration: $(BIN)
	@$(MAKE) --no-print-directory SANITIZE=0 archmerge >/dev/null
	@rc=0; \
	ARCHMERGE_BIN=$(CURDIR)/$(BIN) $(PYTEST) -n $(IT_JOBS) -m "not serial" tests/integration || rc=1; \
	ARCHMERGE_BIN=$(CURDIR)/$(BIN) $(PYTEST) -m "serial and not latency" tests/integration || rc=1; \
	ARCHMERGE_BIN=$(CURDIR)/archmerge $(PYTEST) -m "serial and latency" tests/integration || rc=1; \
	exit $$rc

# The plain build against a few integration tests, a real TLS request among
# them (server/tls_compat.c only matters in the plain build's link).
SMOKE_TESTS ?= tests/integration/test_archmerge.py::test_https_real_tls_request_and_tls12_minimum \
               tests/integration/test_archmerge.py::test_wrong_architecture_is_refused \
               tests/integration/test_observe.py::test_healthz_readyz_and_version
smoke: archmerge
	ARCHMERGE_BIN=$(CURDIR)/archmerge $(PYTEST) -n $(JOBS) $(SMOKE_TESTS)

# The inner loop (README: about 2 minutes on 2 cores): build, unit tests and
# the fastest integration tests, all on the plain build.
CHECK_TESTS ?= tests/integration/test_archmerge.py tests/integration/test_hostile.py \
               tests/integration/test_harness.py
check:
	$(call STAGE,build)
	$(MAKE) -j$(JOBS) archmerge unit-bins
	$(MAKE) check-banned check-layers
	$(call STAGE,unit)
	$(MAKE) unit
	$(call STAGE,integration (fastest))
	ARCHMERGE_BIN=$(CURDIR)/archmerge $(PYTEST) -n $(JOBS) $(CHECK_TESTS)
	$(call STAGE,check done)

# Every check, each integration test once (docs/development.md "make test").
# make test's fuzz stage: a short run of each target (`make fuzz` alone runs FUZZ_SECONDS).
TEST_FUZZ_SECONDS ?= 12
test: deps
	$(call STAGE,checks)
	$(MAKE) -j$(JOBS) archmerge unit-bins
	$(MAKE) check-banned check-layers check-docs
	$(MAKE) verify-deploy
	$(call STAGE,unit)
	$(MAKE) unit
	$(call STAGE,ASan+UBSan build and unit)
	$(MAKE) -j$(JOBS) SANITIZE=1 all unit-bins
	$(MAKE) SANITIZE=1 unit
	$(call STAGE,integration on the ASan+UBSan build)
	$(MAKE) SANITIZE=1 integration
	$(call STAGE,smoke on the plain build)
	$(MAKE) smoke
	$(call STAGE,fuzz)
	$(MAKE) -j$(JOBS) fuzz-build
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	$(call STAGE,valgrind)
	$(MAKE) valgrind
	$(call STAGE,verify-compose)
	@if /usr/bin/python3 tests/integration/harness/engine.py check; then $(MAKE) verify-compose; \
	else echo "skipped: make verify-compose (dockerd cannot start here, see the line above)"; fi
	$(call STAGE,test done)

demo: deps $(BIN)
	/usr/bin/python3 tests/demo.py

# Includes point down the house only (tests/check-layers.py; README "The house").
check-layers:
	@/usr/bin/python3 tests/check-layers.py

# The docs name every option, config key and metric the binary has (tests/check-docs.py).
check-docs: archmerge
	@ARCHMERGE_BIN=./archmerge /usr/bin/python3 tests/check-docs.py

# Unbounded string and number calls are not allowed in product code.
check-banned:
	@! find $(SRC_DIRS) -name '*.[ch]' | xargs grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\('

# ARCHMERGE_INSTALL_BIN: which build to install (verify-deploy passes its own).
ARCHMERGE_INSTALL_BIN ?= archmerge
install: $(ARCHMERGE_INSTALL_BIN)
	install -D -m 0755 $(ARCHMERGE_INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/archmerge
	install -D -m 0644 deploy/archmerge.8 $(DESTDIR)$(PREFIX)/share/man/man8/archmerge.8

# Deployment files: man page, make install, systemd unit, Kubernetes and
# compose YAML (fast; part of `make test`). See deploy/verify.sh.
verify-deploy: archmerge
	@./deploy/verify.sh ./archmerge

# Container image with buildah, smoke-tested (slow, root; not in `make test`).
image:
	./deploy/image.sh

# deploy/compose.yaml with Debian's docker-compose in a private dockerd, on the
# image of `make image` (slow, root; in `make test` when dockerd can start).
verify-compose:
	@./tests/verify-compose.sh

# The systemd unit under a real systemd in systemd-nspawn (slow, root).
verify-systemd: archmerge
	./deploy/systemd-test.sh

clean:
	rm -rf build build-san archmerge archmerge-san

# Benchmarks (never part of `make test`): prints a table, writes bench/results/*.md
bench: deps archmerge
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	ARCHMERGE_BIN=$(CURDIR)/archmerge /usr/bin/python3 bench/run.py $(BENCH_ARGS)

# The main integration tests again, with `serve` run under valgrind (plain
# build): any memory error or definite leak fails the process's clean exit.
VALGRIND_TESTS ?= tests/integration/test_archmerge.py tests/integration/test_hostile.py
VALGRIND := valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
            --num-callers=30 --suppressions=$(CURDIR)/tests/valgrind.supp

.PHONY: valgrind
valgrind:
	$(MAKE) SANITIZE=0 all
	@t=$$(mktemp -d /tmp/am-valgrind-XXXXXX); \
	ARCHMERGE_BIN=$(CURDIR)/archmerge ARCHMERGE_WRAPPER="$(VALGRIND)" \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider -n $(JOBS) --basetemp=$$t $(VALGRIND_TESTS); rc=$$?; \
	cat $$(find $$t -name 'archmerge-*.log') /dev/null | awk '/ERROR SUMMARY:/ { n++; e += $$4 } \
	    /definitely lost:/ { x = $$4; gsub(",", "", x); d += x } END { printf "valgrind: %d processes, %d errors, %d bytes definitely lost\n", n, e, d }'; \
	rm -rf $$t; exit $$rc

# Optional: deploy/Dockerfile builds from the sources alone (no tests/).
-include tests/fuzz/fuzz.mk
