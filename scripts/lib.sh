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
