#!/usr/bin/env bash
# Install the real servers and tools the test suite runs from Debian, if missing: Dovecot for the IMAP
# tests, and promtool, which lints /metrics and checks and unit-tests the Prometheus rules.
# Idempotent. Starts no system service: the test fixtures start their own server processes on loopback
# ports with their own configs (tests/servers/). Meant for root on Debian 12; uses sudo otherwise.
set -euo pipefail

packages=(dovecot-imapd prometheus-alertmanager)

say() { printf 'test-servers: %s\n' "$*"; }

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "cannot run '$*': not root and no sudo" >&2
    exit 1
  fi
}

missing=()
for pkg in "${packages[@]}"; do
  if installed "$pkg"; then
    say "$pkg is installed"
  else
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    say "cannot install ${missing[*]}: not root and no sudo" >&2
    exit 1
  fi

  # Debian's maintainer scripts start services through invoke-rc.d, which asks policy-rc.d first:
  # exit status 101 means "do not start". Install one for the duration, unless the host has its own.
  policy=/usr/sbin/policy-rc.d
  own_policy=no
  if [ ! -e "$policy" ]; then
    say "blocking service starts during the install ($policy)"
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=yes
  fi
  cleanup() { if [ "$own_policy" = yes ]; then "${sudo[@]}" rm -f "$policy"; fi; }
  trap cleanup EXIT

  apt_install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  }
  say "installing ${missing[*]}"
  if ! apt_install "${missing[@]}"; then
    say "install failed; refreshing the package lists (apt-get update) and trying again"
    "${sudo[@]}" apt-get update -q
    apt_install "${missing[@]}"
  fi

  # A system that does run services (systemd) may have started one anyway: stop it, the tests need none.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
    say "stopping the dovecot system service started by the package"
    "${sudo[@]}" systemctl stop dovecot || true
  fi
fi

# promtool: Debian 12 ships it only inside the prometheus package, whose install is about 316 MB
# (prometheus and promtool 96 MB, web UI JavaScript dependencies 220 MB, libjs-moment-timezone alone
# 213 MB), creates a system user and enables a prometheus service. promtool is one Go binary that needs
# only libc, so take just that file out of the package (19 MB download, 48 MB installed): no
# dependencies, no user, no service to keep from starting.
promtool_dest=/usr/local/bin/promtool
if command -v promtool >/dev/null 2>&1; then
  say "promtool is installed"
else
  say "installing promtool from Debian's prometheus package into $promtool_dest"
  (
    work=$(mktemp -d)
    trap 'as_root rm -rf "$work"' EXIT
    mkdir "$work/deb"
    # apt-get download fetches as the _apt user: let it write there (or apt warns and runs as root).
    chmod 755 "$work"
    if id _apt >/dev/null 2>&1; then as_root chown _apt "$work/deb"; fi
    cd "$work/deb"
    if ! as_root apt-get download -q prometheus; then
      say "download failed; refreshing the package lists (apt-get update) and trying again"
      as_root apt-get update -q
      as_root apt-get download -q prometheus
    fi
    dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
    as_root install -m 755 "$work/usr/bin/promtool" "$promtool_dest"
  )
fi

# What the fixtures rely on.
dovecot_bin=$(command -v dovecot || echo /usr/sbin/dovecot)
if [ ! -x "$dovecot_bin" ]; then
  say "dovecot is still missing after the install" >&2
  exit 1
fi
for user in dovecot dovenull; do
  if ! id "$user" >/dev/null 2>&1; then
    say "system user '$user' is missing (dovecot-core creates it); the fixtures need it when run as root" >&2
    exit 1
  fi
done
say "ready: $("$dovecot_bin" --version | head -n 1) at $dovecot_bin"
promtool_bin=$(command -v promtool || echo "$promtool_dest")
if [ ! -x "$promtool_bin" ]; then
  say "promtool is still missing after the install" >&2
  exit 1
fi
say "ready: $("$promtool_bin" --version 2>&1 | head -n 1) at $promtool_bin"
