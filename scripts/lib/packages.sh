# Sourced by scripts/test and scripts/fuzz: installs the Debian packages given that are missing.
ensure_packages() {
    local missing=() pkg sudo=""
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "$(basename "$0"): installing ${missing[*]}" >&2
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

# What librdkafka's bundled build needs (the Kafka worker, and the fuzz targets that link it).
LIBRDKAFKA_PACKAGES=(make gcc g++ perl pkg-config libssl-dev zlib1g-dev)
