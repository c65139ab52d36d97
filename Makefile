# rpcpool - build, test, run, install.
#   make            build build/rpcpoold, build/rpcpoolctl, build/rpcpoolstat
#   make run        install what is missing, build, start a demo pool in front of local anvil nodes
#   make test       install what is missing, build (sanitized), run every test
#                   (RPCPOOL_FUZZ_SECONDS=N also runs each fuzzer N s; CI uses 20)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench      rpcpoold against nginx and the direct path (bench/RESULTS.md)
#   make deps       install missing Debian packages and the npm test tools
#   make install    PREFIX=/usr/local DESTDIR=
#   make format     clang-format the sources

CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
SAN ?=
PKGS := libcurl libconfig openssl libcares hiredis

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DRP_VERSION=\"$(VERSION)\" -Iinclude $(WARN) $(CFLAGS) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Daemon modules: every src/LAYER/*.c (core, proto, shm, worker, supervisor,
# prober); supervisor/main.c holds main().
SRC := $(wildcard src/*/*.c)
OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))

# rpcpoolstat builds without daemon code: the view, the renderers and the
# pure decoders of the breaker and limiter words (plus config for -c).
STAT_OBJ := $(addprefix $(BUILD)/obj/,shm/shm_view.o shm/subring.o shm/status.o core/buf.o shm/breaker.o \
	shm/ratelimit.o core/proc.o core/config.o core/log.o shm/fleet_view.o)

# rpcpoolctl: the configuration (to find the control socket) and the
# control module's command table (its local `help`), with what those need.
CTL_OBJ := $(addprefix $(BUILD)/obj/,supervisor/control.o supervisor/listen.o core/config.o \
	core/log.o core/buf.o core/clock.o core/proc.o shm/status.o shm/shm_view.o shm/subring.o shm/metrics.o \
	shm/breaker.o shm/ratelimit.o shm/fleet_view.o)

PROGS := $(BUILD)/rpcpoold $(BUILD)/rpcpoolctl $(BUILD)/rpcpoolstat

all: $(PROGS) lib

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h src/*/*.h) | $(BUILD)/obj
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/rpcpoold: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/rpcpoolctl: tools/rpcpoolctl.c $(CTL_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(CTL_OBJ) $(LDLIBS)

$(BUILD)/rpcpoolstat: tools/rpcpoolstat.c $(STAT_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(STAT_OBJ) $(LDLIBS)

# Unit tests: tests/unit/test_NAME.c links src/*/NAME.c and what TEST_DEPS_NAME adds.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TEST_DEPS_config := src/core/log.c
TEST_DEPS_jsonrpc := src/proto/frame.c
TEST_DEPS_stress := src/shm/subring.c src/core/buf.c src/shm/breaker.c src/shm/ratelimit.c src/core/clock.c src/shm/hold.c src/shm/shm.c src/core/proc.c src/core/siphash.c
TEST_DEPS_crash := src/shm/subring.c src/core/buf.c src/shm/breaker.c src/shm/ratelimit.c src/core/clock.c src/shm/hold.c src/shm/shm.c src/core/proc.c src/core/siphash.c
TEST_DEPS_publish := src/shm/subring.c src/core/buf.c src/shm/breaker.c src/shm/ratelimit.c src/core/clock.c src/shm/hold.c src/shm/shm.c src/core/proc.c \
	src/core/siphash.c
TEST_DEPS_chain := src/proto/jsonrpc.c src/proto/frame.c
TEST_DEPS_cachekey := src/proto/jsonrpc.c src/proto/frame.c
TEST_DEPS_cache := src/proto/cachekey.c src/proto/jsonrpc.c src/proto/frame.c src/core/buf.c
TEST_DEPS_health := src/proto/jsonrpc.c src/proto/frame.c
TEST_DEPS_fleet := src/fleet/lease.c src/fleet/verdict.c src/shm/ratelimit.c src/shm/breaker.c src/core/siphash.c
TEST_DEPS_timer :=
TEST_DEPS_shm_view := src/shm/subring.c src/shm/status.c src/core/buf.c src/shm/breaker.c src/shm/ratelimit.c src/core/proc.c \
	src/shm/fleet_view.c
TEST_DEPS_control := src/core/buf.c src/shm/status.c src/shm/shm_view.c src/shm/metrics.c src/shm/breaker.c \
	src/shm/ratelimit.c src/core/clock.c src/core/log.c src/supervisor/listen.c src/shm/shm.c src/core/proc.c src/core/siphash.c src/shm/hold.c \
	src/shm/fleet_view.c src/shm/subring.c
TEST_DEPS_h1 := src/core/buf.c
TEST_DEPS_route := src/worker/balancer.c src/shm/breaker.c
TEST_DEPS_metrics := src/core/buf.c src/shm/shm_view.c src/shm/subring.c src/shm/breaker.c src/shm/ratelimit.c src/core/proc.c src/shm/fleet_view.c
TEST_DEPS_hedge := src/core/clock.c
TEST_DEPS_subjson := src/proto/jsonrpc.c src/proto/frame.c src/core/buf.c
TEST_DEPS_subring := src/core/buf.c
TEST_DEPS_wsframe := src/core/buf.c src/proto/subjson.c src/proto/jsonrpc.c src/proto/frame.c
.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/unit/test_%.c $$(wildcard src/*/$$*.c) $$(TEST_DEPS_$$*) $(wildcard tests/unit/*.h) \
		$(wildcard include/*.h src/*/*.h) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $(filter %.c,$^) -lcunit $(LDLIBS)

units: $(UNIT_BIN)

deps:
	@sh tools/deps.sh

# Tests run against a sanitized build in build/san.
test: deps
	$(MAKE) BUILD=build/san SAN=1 all units
	@RPCPOOL_BUILD=build/san sh tests/run.sh

# deps first, then a fresh make: pkg-config flags are read after the install
run: deps
	$(MAKE) all
	@RPCPOOL_BUILD=$(BUILD) sh tools/run-demo.sh

install: all install-lib install-doc
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/rpcpoold $(DESTDIR)$(PREFIX)/sbin/rpcpoold
	install -m 0755 $(BUILD)/rpcpoolctl $(DESTDIR)$(PREFIX)/sbin/rpcpoolctl
	install -m 0755 $(BUILD)/rpcpoolstat $(DESTDIR)$(PREFIX)/bin/rpcpoolstat

format:
	clang-format -i src/*/*.c $(wildcard src/*/*.h) include/*.h include/rpcpool/*.h lib/*.c tools/*.c tests/unit/*.c \
		tests/unit/*.h bench/*.c tests/fuzz/*.c

clean:
	rm -rf build

.PHONY: all units deps test run install format clean

include mk/lib.mk
include mk/bench.mk
include mk/fuzz.mk
