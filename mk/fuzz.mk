# mk/fuzz.mk - libFuzzer targets (tests/fuzz/fuzz_*.c). Included by the
# Makefile, or used as `make -f Makefile -f mk/fuzz.mk TARGET`.
#
#   make fuzz          each target for FUZZ_SECONDS (default 60) on a copy of
#                      its seed corpus; reports execs, cov and ft
#   make fuzz-ci       each target for 30 s (what CI runs)
#   make fuzz-build    just build $(FUZZ_BUILD)/fuzz_{frame,jsonrpc,config,http,response,
#                      upstream,restore,client,cachekey,subjson,wsframe}
#
# clang with libFuzzer is installed first when missing (tests/fuzz/run.sh
# --deps: Debian's clang and libclang-rt-14-dev). A crash keeps its input in
# $(FUZZ_BUILD)/artifacts/ and fails the run.

FUZZ_CC ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 30
FUZZ_TARGETS := frame jsonrpc config http response upstream restore client cachekey subjson wsframe
FUZZ_BIN := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -g -O1 \
	-fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# The daemon sources (and libraries) each target links.
FUZZ_SRC_frame := src/proto/frame.c
FUZZ_SRC_jsonrpc := src/proto/jsonrpc.c src/proto/frame.c
FUZZ_SRC_response := src/proto/jsonrpc.c src/proto/frame.c
FUZZ_SRC_config := src/core/config.c src/core/log.c
FUZZ_LIBS_config := -lconfig
FUZZ_SRC_http := src/proto/http.c
FUZZ_LIBS_http := -lhttp_parser
# the native client's response reader: the pure half (src/proto/h1.c), as
# tests/unit/test_h1.c links it
FUZZ_SRC_upstream := src/proto/h1.c src/core/buf.c
FUZZ_LIBS_upstream := -lhttp_parser
FUZZ_SRC_restore := src/proto/jsonrpc.c src/proto/frame.c
FUZZ_SRC_cachekey := src/proto/cachekey.c src/proto/jsonrpc.c src/proto/frame.c
# the JSON of subscriptions: the follower's answers, the clients' filters
FUZZ_SRC_subjson := src/proto/subjson.c src/proto/jsonrpc.c src/proto/frame.c src/core/buf.c
# the head feed's WebSocket framing and the newHeads notification it reads
FUZZ_SRC_wsframe := src/proto/wsframe.c src/proto/subjson.c src/proto/jsonrpc.c src/proto/frame.c \
	src/core/buf.c
FUZZ_LIBS_wsframe := -lcrypto
# librpcpool: the target includes lib/client.c itself
FUZZ_SRC_client :=
FUZZ_DEPS_client := lib/client.c include/rpcpool/client.h

# The sub-make needs this file too when the Makefile does not include it.
FUZZ_MAKE := $(MAKE) --no-print-directory $(if $(shell grep -qs '^-\{0,1\}include .*mk/fuzz\.mk' Makefile && echo y),,-f Makefile -f mk/fuzz.mk)

$(FUZZ_BUILD):
	mkdir -p $@

# One rule per target (no second expansion needed).
define FUZZ_RULE
$(FUZZ_BUILD)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_DEPS_$(1)) $(wildcard include/*.h) | $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CFLAGS_$(1)) -o $$@ tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_LIBS_$(1))
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULE,$(t))))

fuzz-deps:
	@sh tests/fuzz/run.sh --deps

fuzz-build: $(FUZZ_BIN)

# deps first, then a fresh make: clang may have just been installed.
fuzz: fuzz-deps
	@$(FUZZ_MAKE) FUZZ_BUILD=$(FUZZ_BUILD) fuzz-build
	@FUZZ_NO_BUILD=1 FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-ci: fuzz-deps
	@$(FUZZ_MAKE) FUZZ_BUILD=$(FUZZ_BUILD) fuzz-build
	@FUZZ_NO_BUILD=1 FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh $(FUZZ_CI_SECONDS)

.PHONY: fuzz fuzz-ci fuzz-build fuzz-deps
