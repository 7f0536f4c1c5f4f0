# libFuzzer targets (tests/fuzz/fuzz_*.c), included by the Makefile.
# `make fuzz` builds them with clang (ASan + UBSan + libFuzzer) and runs each
# for FUZZ_SECONDS on a /tmp copy of its seed corpus tests/fuzz/corpus/<name>/;
# the committed inputs (seeds and former crashes) are replayed first.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_RSS_MB  ?= 2048
FUZZ_BUILD   := build-fuzz
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Werror \
                -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -I. -MMD -MP
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build fuzz-clean
.SECONDARY: $(FUZZ_OBJS)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

fuzz: fuzz-build
	@./tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_RSS_MB) $(FUZZ_BINS)

clean: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_BUILD)
