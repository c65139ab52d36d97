#!/bin/sh
# tools/deps.sh - install what rpcpool needs to build and test, and only what
# is missing: Debian packages (one apt-get run) and the npm test tools (anvil,
# cast, ethers) pinned by tests/package-lock.json. Prints "deps: ok" and
# nothing else when everything is already there. Called by `make deps`.
#
# Environment: CC (the compiler to check, default cc), DEPS_DRY_RUN=1 (say
# what would be installed, install nothing).

set -u
cd "$(dirname "$0")/.." || exit 1

say() { echo "deps: $*"; }
die() {
    echo "deps: error: $*" >&2
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

PKGS=""
add() {
    case " $PKGS " in *" $1 "*) ;; *) PKGS="${PKGS:+$PKGS }$1" ;; esac
}

# pkg-config itself, then the libraries it describes.
have_pc() { have pkg-config && pkg-config --exists "$1" 2>/dev/null; }
have pkg-config || add pkg-config
have_pc libcurl || add libcurl4-openssl-dev
have_pc libconfig || add libconfig-dev
have_pc openssl || add libssl-dev   # the workers' TLS client
have_pc libcares || add libc-ares-dev # the workers' resolver
have_pc hiredis || add libhiredis-dev   # the fleet agent's Redis client
have openssl || add openssl         # the tests make their own CA
# Header-only or pkg-config-less libraries: their headers.
[ -f /usr/include/jsmn.h ] || add libjsmn-dev
[ -f /usr/include/CUnit/CUnit.h ] || add libcunit1-dev
[ -f /usr/include/http_parser.h ] || add libhttp-parser-dev

# A C compiler that can build a program against the C library.
CC_CHECK=${CC:-cc}
if ! have "$CC_CHECK" && ! have gcc && ! have clang; then
    add gcc
    add libc6-dev
elif [ ! -f /usr/include/stdio.h ]; then
    add libc6-dev
fi

# Tools the tests drive: curl (HTTP front), groff (man pages render).
have curl || add curl
have groff || add groff-base
have strace || add strace       # rpcpoolstat's read-only check
have valgrind || add valgrind   # one integration run under memcheck
have redis-server || add redis-server # the fleet tests' own Redis

# node and npm for the integration tests.
have node || add nodejs
have npm || add npm

if [ -n "$PKGS" ]; then
    have apt-get || die "missing: $PKGS; this is not a Debian-like system (no apt-get): install them by hand"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if have sudo; then
            SUDO="sudo"
        else
            die "missing Debian packages: $PKGS; not root and no sudo: run as root: apt-get install -y $PKGS"
        fi
    fi
    say "installing Debian packages: $PKGS"
    if [ "${DEPS_DRY_RUN:-0}" = 1 ]; then
        say "(dry run) $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $PKGS"
    else
        # shellcheck disable=SC2086 # PKGS is a list of words
        if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update &&
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PKGS; }; then
            die "apt-get failed installing: $PKGS"
        fi
    fi
fi

# The npm test tools, from the committed lock file.
NPM_MISSING=""
[ -x tests/node_modules/.bin/anvil ] || NPM_MISSING="${NPM_MISSING} anvil"
[ -x tests/node_modules/.bin/cast ] || NPM_MISSING="${NPM_MISSING} cast"
[ -f tests/node_modules/ethers/package.json ] || NPM_MISSING="${NPM_MISSING} ethers"
if [ -n "$NPM_MISSING" ]; then
    [ -f tests/package-lock.json ] || die "tests/package-lock.json is missing"
    case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-amd64) ;;
    *) say "warning: tests/package.json pins Foundry's linux-amd64 binaries; this is $(uname -s)-$(uname -m)" ;;
    esac
    say "installing npm test tools (missing:$NPM_MISSING) with npm ci in tests/"
    if [ "${DEPS_DRY_RUN:-0}" = 1 ]; then
        say "(dry run) cd tests && npm ci --no-audit --no-fund"
    else
        have npm || die "npm not found"
        (cd tests && npm ci --no-audit --no-fund) || die "npm ci failed in tests/"
        if [ ! -x tests/node_modules/.bin/anvil ] || [ ! -x tests/node_modules/.bin/cast ] ||
            [ ! -f tests/node_modules/ethers/package.json ]; then
            die "npm ci ran but anvil, cast or ethers is still missing under tests/node_modules"
        fi
    fi
fi

if [ "${DEPS_DRY_RUN:-0}" != 1 ]; then
    # Check what the installs should have brought.
    for pc in libcurl libconfig openssl libcares hiredis; do
        have_pc "$pc" || die "pkg-config cannot find $pc after installing"
    done
    for h in /usr/include/jsmn.h /usr/include/CUnit/CUnit.h /usr/include/http_parser.h; do
        [ -f "$h" ] || die "$h is still missing"
    done
    have "$CC_CHECK" || have gcc || have clang || die "no C compiler ($CC_CHECK, gcc, clang)"
    have node || die "node is still missing"
fi

if [ -z "$PKGS" ] && [ -z "$NPM_MISSING" ]; then
    say "ok"
elif [ "${DEPS_DRY_RUN:-0}" = 1 ]; then
    say "dry run: would install:${PKGS:+ $PKGS}${NPM_MISSING:+ npm:$NPM_MISSING}"
else
    say "ok (installed:${PKGS:+ $PKGS}${NPM_MISSING:+ npm:$NPM_MISSING})"
fi
