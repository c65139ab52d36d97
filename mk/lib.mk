# mk/lib.mk - librpcpool (docs/interface.md section 7) and the packaging pieces:
# the static and shared library, its pkg-config file, the example program,
# the live client test, and the install targets for the library, the
# manual pages, the sample configuration and the systemd unit.
#
# Included from the Makefile after its `all` rule (so `all` stays the
# default goal); until then:  make -f Makefile -f mk/lib.mk BUILD=build/lib lib
#
# Uses the Makefile's BUILD, CC, ALL_CFLAGS, LDFLAGS, PREFIX, DESTDIR and
# VERSION. Installation directories can be overridden one by one.

LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
# Configuration lives in /etc for a system install (PREFIX=/usr), else
# under the prefix (/usr/local/etc).
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
AR ?= ar
, := ,

LIB_SONAME := librpcpool.so.0
LIB_A := $(BUILD)/librpcpool.a
LIB_SO := $(BUILD)/$(LIB_SONAME)
LIB_LINK := $(BUILD)/librpcpool.so
LIB_PC := $(BUILD)/rpcpool.pc
LIB_HDR := include/rpcpool/client.h
LIB_OBJ := $(BUILD)/libobj/client.o
MAN1 := man/rpcpoolstat.1
MAN5 := man/rpcpool.conf.5
MAN8 := man/rpcpoold.8 man/rpcpoolctl.8

# What `all` should add, and what `units` should add.
LIB_ALL := $(LIB_A) $(LIB_SO) $(LIB_LINK) $(LIB_PC) $(BUILD)/rpcpool-example
LIB_UNITS := $(BUILD)/tests/test_client

lib: $(LIB_ALL)

$(BUILD)/libobj:
	mkdir -p $@

# Position-independent, so the same object goes into both libraries.
$(LIB_OBJ): lib/client.c $(LIB_HDR) | $(BUILD)/libobj
	$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

# -z defs (no undefined symbol) except in sanitized builds: clang leaves the
# sanitizer runtime to the executable.
$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) $(if $(SAN),,-Wl$(,)-z$(,)defs) $(LDFLAGS) -o $@ $^

$(LIB_LINK): $(LIB_SO)
	ln -sf $(LIB_SONAME) $@

# Regenerated on every run but replaced only when the text changes, so a
# `make install PREFIX=...` after `make` writes the right prefix.
$(LIB_PC): lib/rpcpool.pc.in rpcpool-pc-force | $(BUILD)/libobj
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	    -e 's|@VERSION@|$(or $(VERSION),0.1.0)|g' $< >$@.tmp
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# The example links the static library: it runs from the build directory.
$(BUILD)/rpcpool-example: tools/rpcpool-example.c $(LIB_A) $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A)

# The live client test (CUnit). An explicit rule: it overrides the
# Makefile's tests/unit pattern rule and links the built library. Without
# RPCPOOL_TEST_SOCKET it reports 0 tests and exits 0;
# tests/integration/packaging.test.js runs it against a live rpcpoold.
$(BUILD)/tests/test_client: tests/unit/test_client.c $(LIB_A) $(LIB_HDR) tests/unit/rp_test.h
	mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIB_A) -lcunit

install-lib: $(LIB_A) $(LIB_SO) $(LIB_PC)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/rpcpool
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/librpcpool.a
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/librpcpool.so
	install -m 0644 $(LIB_HDR) $(DESTDIR)$(INCLUDEDIR)/rpcpool/client.h
	install -m 0644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/rpcpool.pc

# Manual pages, the sample configuration (as rpcpool.conf.sample, never
# over a live rpcpool.conf) and the systemd unit, whose paths follow
# PREFIX and SYSCONFDIR.
install-doc:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/rpcpool
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 etc/rpcpool.conf $(DESTDIR)$(SYSCONFDIR)/rpcpool/rpcpool.conf.sample
	sed -e 's|/usr/sbin/|$(PREFIX)/sbin/|g' -e 's|/etc/rpcpool/|$(SYSCONFDIR)/rpcpool/|g' \
	    etc/rpcpool.service >$(DESTDIR)$(UNITDIR)/rpcpool.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/rpcpool.service

.PHONY: lib install-lib install-doc rpcpool-pc-force
