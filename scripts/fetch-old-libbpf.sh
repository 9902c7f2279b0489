#!/usr/bin/env bash
# Fetch a real libbpf 0.x (Debian 11's libbpf0, 0.3) into the cache, to check that
# `--compat libbpf-0.x` output parses with an old libbpf and not only with our reading of it.
# Prints LIBBPF0=/…/libbpf.so.0.3.0, or UNAVAILABLE=<why> when the mirror has dropped the suite.
# Cached under $BTFGEN_CACHE/libbpf0/<version>/. apt reads
# bullseye's lists from a private directory there (removed afterwards), so the system's apt
# sources are untouched.
# Usage: scripts/fetch-old-libbpf.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
suite="${BTFGEN_OLD_LIBBPF_SUITE:-bullseye}"
base="$BTFGEN_CACHE/libbpf0"
found=$(ls "$base"/*/libbpf.so.0.* 2>/dev/null | head -1 || true)
if [ -z "$found" ]; then
    apt="$base/apt-$suite"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb http://deb.debian.org/debian $suite main" > "$apt/sources.list"
    opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
          -o "Dir::Cache=$apt/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
    log "fetching Debian $suite's package lists (private, under $apt)"
    version=
    if apt-get "${opts[@]}" update -qq >&2; then
        version=$(apt-cache "${opts[@]}" policy libbpf0 | awk '/Candidate:/ {print $2}')
    fi
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        # Old suites leave the mirror for archive.debian.org in time: say so instead of failing
        # the whole run; the compat test then reports that it could not run.
        rm -rf "$apt"
        echo "UNAVAILABLE=Debian's mirror no longer serves $suite's libbpf0"
        exit 0
    fi
    dir="$base/${version//:/%3a}"
    tmp=$(mktemp -d "$base/partial.XXXXXX")
    (cd "$tmp" && apt-get "${opts[@]}" download -q "libbpf0=$version" >&2)
    dpkg-deb -x "$tmp"/libbpf0_*.deb "$tmp/root"
    so=$(ls "$tmp"/root/usr/lib/*/libbpf.so.0.* | head -1)
    [ -n "$so" ] || die "libbpf0 $version holds no libbpf.so.0.*"
    mkdir -p "$tmp/out" && cp "$so" "$tmp/out/" && rm -rf "$dir" && mv "$tmp/out" "$dir" && rm -rf "$tmp"
    rm -rf "$apt"
    found=$(ls "$dir"/libbpf.so.0.* | head -1)
fi
echo "LIBBPF0=$found"
