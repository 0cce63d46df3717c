#!/usr/bin/env bash
# Debian packages the integration tests start for real: Prometheus, Alertmanager and Postgres.
# Idempotent: installs only what is missing. Needs root (or sudo) on a Debian/Ubuntu machine.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The packages' own services are not wanted: tests start their own on free loopback ports.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
