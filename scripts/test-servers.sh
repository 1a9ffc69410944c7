#!/usr/bin/env bash
# Install the real servers and tools the test suite runs from Debian, if missing: Dovecot for the IMAP
# tests, MariaDB for the cdr_sql tests (the one system service this script starts: the tests need it on
# 127.0.0.1:3306 with root and no password, like PostgreSQL on 5432); promtool, which lints /metrics and
# checks and unit-tests the Prometheus rules; Prometheus and Alertmanager for the end-to-end alerting test;
# podman and debootstrap, which build the container image; Chromium, which opens the HTML report headless.
# Idempotent. Starts no system service: the test fixtures start their own server processes on loopback
# ports with their own configs (tests/servers/). Meant for root on Debian 12; uses sudo otherwise.
set -euo pipefail

packages=(dovecot-imapd mariadb-server podman debootstrap chromium)

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

# promtool, prometheus and alertmanager: Debian 12 ships them in the prometheus and
# prometheus-alertmanager packages, whose install is about 316 MB (the web UI's JavaScript dependencies
# 220 MB, libjs-moment-timezone alone 213 MB), creates system users and enables services. Each is one
# Go binary that needs only libc, so take just those files out of the packages (30 MB download): no
# dependencies, no user, no service to keep from starting. Prometheus's API works without its web UI.
extract_file() {  # extract_file PACKAGE PATH-IN-PACKAGE DESTINATION [MODE]
  local package=$1 inside=$2 dest=$3 mode=${4:-755}
  if [ -e "$dest" ]; then
    say "$(basename "$dest") is installed"
    return
  fi
  say "installing $(basename "$dest") from Debian's $package package into $dest"
  (
    work=$(mktemp -d)
    trap 'as_root rm -rf "$work"' EXIT
    mkdir "$work/deb"
    # apt-get download fetches as the _apt user: let it write there (or apt warns and runs as root).
    chmod 755 "$work"
    if id _apt >/dev/null 2>&1; then as_root chown _apt "$work/deb"; fi
    cd "$work/deb"
    if ! as_root apt-get download -q "$package"; then
      say "download failed; refreshing the package lists (apt-get update) and trying again"
      as_root apt-get update -q
      as_root apt-get download -q "$package"
    fi
    dpkg-deb --fsys-tarfile "${package}"_*.deb | tar -x -C "$work" ".$inside"
    as_root install -D -m "$mode" "$work$inside" "$dest"
  )
}
promtool_dest=/usr/local/bin/promtool
if command -v promtool >/dev/null 2>&1; then
  say "promtool is installed"
else
  extract_file prometheus /usr/bin/promtool "$promtool_dest"
fi
extract_file prometheus /usr/bin/prometheus /usr/local/bin/prometheus
extract_file prometheus-alertmanager /usr/bin/prometheus-alertmanager /usr/local/bin/prometheus-alertmanager
# Debian's Alertmanager reads its notification templates from this directory at start.
for template in default.tmpl email.tmpl; do
  extract_file prometheus-alertmanager "/usr/share/prometheus/alertmanager/$template" \
    "/usr/share/prometheus/alertmanager/$template" 644
done

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

# MariaDB: the cdr_sql tests create a database per test as root on 127.0.0.1:3306 without a password.
mariadb_tcp() { mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; }
if ! mariadb_tcp; then
  if ! as_root mariadb -u root -e 'SELECT 1' >/dev/null 2>&1; then
    say "starting the mariadb service"
    as_root service mariadb start >/dev/null || as_root service mysql start >/dev/null
  fi
  if ! mariadb_tcp; then
    # Debian's root logs in through the unix socket only: allow an empty password too (a test machine).
    say "letting root log in over TCP without a password (unix_socket OR an empty password)"
    as_root mariadb -u root -e \
      "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
  fi
fi
if ! mariadb_tcp; then
  say "MariaDB does not accept root without a password on 127.0.0.1:3306" >&2
  exit 1
fi
say "ready: $(mariadb --version) on 127.0.0.1:3306"

for tool in prometheus prometheus-alertmanager podman debootstrap; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/local/bin/$tool" ] && [ ! -x "/usr/sbin/$tool" ]; then
    say "$tool is still missing after the install" >&2
    exit 1
  fi
done
say "ready: $(/usr/local/bin/prometheus --version 2>&1 | head -n 1)"
say "ready: $(/usr/local/bin/prometheus-alertmanager --version 2>&1 | head -n 1)"
say "ready: $(podman --version) and debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
