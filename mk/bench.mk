# mk/bench.mk - the load generator, the shm hot-path bench and `make bench`.
# Included by the Makefile after its variables (CC, BUILD, ALL_CFLAGS,
# LDFLAGS, LDLIBS) are set.
#
#   make bench            deps, an optimised build in $(BENCH_BUILD) (no
#                         sanitizers), then bench/run.sh: nginx (installed if
#                         missing) vs rpcpoold, the shm hot path, idle clients;
#                         then bench/hedge.js: hedged reads with one slow endpoint
#   make bench-hedge      only bench/hedge.js (on the same optimised build)
#   make $(BUILD)/rpcbench $(BUILD)/shm_hotpath   just the tools

BENCH_BUILD ?= build/bench

# The sub-make needs this file too when the Makefile does not include it
# (make -f Makefile -f mk/bench.mk ...).
BENCH_MAKE := $(MAKE) $(if $(shell grep -qs '^-\{0,1\}include .*mk/bench\.mk' Makefile && echo y),,-f Makefile -f mk/bench.mk)

$(BUILD)/rpcbench: bench/rpcbench.c | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -lhttp_parser -lm

$(BUILD)/shm_hotpath: bench/shm_hotpath.c src/shm/ratelimit.c src/shm/breaker.c src/worker/balancer.c \
		src/shm/hold.c src/shm/subring.c src/core/buf.c src/worker/route.c \
		$(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/cache_hit: bench/cache_hit.c src/shm/cache.c src/proto/cachekey.c src/proto/jsonrpc.c \
		src/proto/frame.c src/core/buf.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^)

# deps first, then a fresh make: pkg-config flags are read after the install.
bench: deps
	$(BENCH_MAKE) BUILD=$(BENCH_BUILD) SAN= CFLAGS="-O2 -g" all $(BENCH_BUILD)/rpcbench \
		$(BENCH_BUILD)/shm_hotpath $(BENCH_BUILD)/cache_hit
	@RPCPOOL_BUILD=$(BENCH_BUILD) bash bench/run.sh
	@RPCPOOL_BUILD=$(BENCH_BUILD) node bench/hedge.js

# Hedged reads alone (bench/hedge.js): one slow endpoint of three, hedging
# off and on, side by side.
bench-hedge: deps
	$(BENCH_MAKE) BUILD=$(BENCH_BUILD) SAN= CFLAGS="-O2 -g" all $(BENCH_BUILD)/rpcbench
	@RPCPOOL_BUILD=$(BENCH_BUILD) node bench/hedge.js

.PHONY: bench bench-hedge
