#!/usr/bin/env bash
# Everything the demo and the tests need on this machine, installed idempotently (fast when done):
#  1. Debian bookworm packages: etcd 3.4 (etcd-server, etcd-client) and the tools of the local
#     test cluster (unshare, ip, openssl, mount, mkfs.ext4, tar, the static busybox its busybox
#     and alpine images run, curl for its httpGet probes), and the reference age tool.
#  2. npm dependencies (npm ci) when node_modules is missing or older than package-lock.json.
#  3. etcd 3.5 (etcd, etcdctl, etcdutl) from Debian's trixie suite, fetched through a private
#     sources list and unpacked into a cache folder: never installed system-wide (that would pull
#     trixie's libc). The version is pinned; when the archive no longer serves it this fails with a
#     line naming it.
# `npm run demo` and `npm test` run it first; so does .ci/run. Runs as root.
# KUBECTL_ETCD_SIM_CACHE moves the cache (default /var/cache/kubectl-etcd-sim).
set -euo pipefail
cd "$(dirname "$0")/.."

ETCD35_VERSION=3.5.16-4
ETCD35_SUITE=trixie
cache=${KUBECTL_ETCD_SIM_CACHE:-/var/cache/kubectl-etcd-sim}
say() { printf 'setup: %s\n' "$*" >&2; }

# 1. System packages (only when something is missing).
missing=()
for tool in etcd etcdctl unshare ip openssl mount mkfs.ext4 tar age perl busybox curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  say "installing Debian packages (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends etcd-server etcd-client util-linux iproute2 openssl mount e2fsprogs tar age perl-base busybox-static curl
fi

# 2. npm dependencies.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# 3. etcd 3.5, unpacked under $cache/etcd-$ETCD35_VERSION/usr/bin.
dest="$cache/etcd-$ETCD35_VERSION"
if [[ ! -x "$dest/usr/bin/etcdutl" || ! -x "$dest/usr/bin/etcd" || ! -x "$dest/usr/bin/etcdctl" ]]; then
  say "fetching etcd $ETCD35_VERSION from Debian $ETCD35_SUITE into $dest"
  work=$(mktemp -d "$cache.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache")"; mktemp -d "$cache.tmp.XXXXXX"; })
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $ETCD35_SUITE main" >"$work/sources.list"
  apt_opts=(-q -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update >/dev/null
  if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" download "etcd-server=$ETCD35_VERSION" "etcd-client=$ETCD35_VERSION" >/dev/null); then
    say "Debian $ETCD35_SUITE no longer serves etcd $ETCD35_VERSION; set ETCD35_VERSION in scripts/setup.sh to one it serves (apt-cache policy etcd-server with the $ETCD35_SUITE suite)"
    exit 1
  fi
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  "$work/root/usr/bin/etcd" --version | grep -q "etcd Version: ${ETCD35_VERSION%%-*}" \
    || { say "the unpacked etcd is not ${ETCD35_VERSION%%-*}"; exit 1; }
  mkdir -p "$cache"
  rm -rf "$dest"
  mv "$work/root" "$dest"
fi
