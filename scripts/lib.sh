# Shared shell helpers for btfgen's scripts. Source it; do not run it.
# Cache root for heavy fixtures (Debian debuginfo, the test kernel); keyed by version below it.
BTFGEN_CACHE="${BTFGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/btfgen}"
export BTFGEN_CACHE

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# apt_ready: run `apt-get update` once per boot of this script family.
apt_ready() {
    if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(ls /var/lib/apt/lists/*Packages* 2>/dev/null | head -1)" ]; then
        apt-get update -qq >&2
    fi
}

# apt_for ARCH: set the array `apt_opts` to the options that make apt-get/apt-cache read Debian's
# package lists for ARCH. The host's own architecture uses the system's configuration (and
# apt_ready); any other gets a private sources list and lists directory under
# $BTFGEN_CACHE/apt-ARCH, fetched once (remove that directory to refresh them), so the system's apt
# sources and state are never touched.
# Suites as on a Debian 12 host: bookworm, bookworm-updates, bookworm-security.
apt_for() {
    local arch=$1 dir
    apt_opts=()
    if [ "$arch" = "$(dpkg --print-architecture)" ]; then
        apt_ready
        return
    fi
    dir="$BTFGEN_CACHE/apt-$arch"
    apt_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
              -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
              -o "Dir::State::status=$dir/status"
              -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
              -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
    if [ -z "$(ls "$dir"/lists/*Packages* 2>/dev/null | head -1)" ]; then
        mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
        : > "$dir/status"
        {
            echo "deb [arch=$arch] http://deb.debian.org/debian bookworm main"
            echo "deb [arch=$arch] http://deb.debian.org/debian bookworm-updates main"
            echo "deb [arch=$arch] http://deb.debian.org/debian-security bookworm-security main"
        } > "$dir/sources.list"
        log "fetching Debian's $arch package lists (private, under $dir)"
        apt-get "${apt_opts[@]}" update -qq >&2 || die "apt-get update for $arch failed (lists under $dir)"
    fi
}
