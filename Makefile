# archmerge: plain Makefile. `make` builds, `make test` installs what is
# missing and runs unit + integration tests (then again under ASan+UBSan),
# `make demo` shows the main job on a local registry.

CC       ?= cc
VERSION  := 0.1.0
PREFIX   ?= /usr/local
SANITIZE ?= 0
BUILD    ?= build

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Werror \
            -DARCHMERGE_VERSION='"$(VERSION)"'
LDLIBS   += -lcivetweb -lcurl -ljansson -lconfig -lssl -lcrypto -lpthread -ldl

ifeq ($(SANITIZE),1)
BUILD    := build-san
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

# See server/tls_compat.c: the executable answers CivetWeb's dlopen("libssl.so").
BIN_LDFLAGS := -Wl,-soname,libssl.so -Wl,--dynamic-list=server/tls_compat.list

LIB_SRCS := $(filter-out server/main.c, $(wildcard server/*.c handlers/*.c registry/*.c config/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

BIN := $(if $(filter 1,$(SANITIZE)),archmerge-san,archmerge)

.PHONY: all deps test unit integration demo clean install check-banned

all: $(BIN)

$(BIN): $(BUILD)/server/main.o $(LIB_OBJS) server/tls_compat.list
	$(CC) $(LDFLAGS) $(BIN_LDFLAGS) -o $@ $(BUILD)/server/main.o $(LIB_OBJS) $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-function $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# Installs the Debian packages the build and the tests need, only when missing.
deps:
	@./tests/deps.sh

unit: $(UNIT_BINS)
	@./tests/run-unit.sh $(UNIT_BINS)

integration: $(BIN)
	ARCHMERGE_BIN=$(CURDIR)/$(BIN) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

test: deps
	$(MAKE) check-banned
	$(MAKE) unit integration
	$(MAKE) SANITIZE=1 unit integration
	$(MAKE) fuzz
	$(MAKE) valgrind

demo: deps $(BIN)
	/usr/bin/python3 tests/demo.py

# Unbounded string and number calls are not allowed in product code.
check-banned:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\(' \
	    server/*.[ch] handlers/*.[ch] registry/*.[ch] config/*.[ch]

install: archmerge
	install -D -m 0755 archmerge $(DESTDIR)$(PREFIX)/bin/archmerge

clean:
	rm -rf build build-san archmerge archmerge-san

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
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp=$$t $(VALGRIND_TESTS); rc=$$?; \
	cat $$(find $$t -name 'archmerge-*.log') /dev/null | awk '/ERROR SUMMARY:/ { n++; e += $$4 } \
	    /definitely lost:/ { x = $$4; gsub(",", "", x); d += x } END { printf "valgrind: %d processes, %d errors, %d bytes definitely lost\n", n, e, d }'; \
	rm -rf $$t; exit $$rc

include tests/fuzz/fuzz.mk
