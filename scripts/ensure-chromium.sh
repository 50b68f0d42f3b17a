#!/usr/bin/env bash
# Prints the path of a usable Chromium on stdout and nothing else, so callers can capture it with
# $(...); every message goes to stderr. The browser tests drive the system's Chromium (Debian's
# `chromium` package) with playwright-core: a browser download is neither wanted nor possible here.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

found() {
  printf '%s\n' "$1"
  exit 0
}

# 1. An explicit choice wins, but a wrong one must not be silently replaced by another binary.
if [[ -n "${CHROMIUM_BIN:-}" ]]; then
  if [[ -x "${CHROMIUM_BIN}" && ! -d "${CHROMIUM_BIN}" ]]; then
    found "${CHROMIUM_BIN}"
  fi
  log "CHROMIUM_BIN=${CHROMIUM_BIN} is not an executable file; looking elsewhere"
fi

look() {
  local candidate
  for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [[ -x "${candidate}" ]]; then
      found "${candidate}"
    fi
  done
}
look

# 2. Install it, but only where that needs no password prompt (CI must never hang).
install_with_apt() {
  local -a sudo_cmd=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
      sudo_cmd=(sudo -n)
    else
      log "apt-get is available but this user is not root and passwordless sudo is not allowed"
      return 1
    fi
  fi
  local candidate_version
  candidate_version="$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ { print $2 }' || true)"
  if [[ -z "${candidate_version}" || "${candidate_version}" == "(none)" ]]; then
    log "running apt-get update"
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  fi
  log "installing chromium with apt-get (a few minutes on a cold machine)"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 || return 1
}

if command -v apt-get >/dev/null 2>&1; then
  if install_with_apt; then
    look
    log "apt-get install finished but no chromium binary was found"
  else
    log "could not install chromium with apt-get"
  fi
fi

log "Chromium was not found and could not be installed: run 'sudo apt-get install chromium' (Debian/Ubuntu), or set CHROMIUM_BIN=/path/to/chromium"
exit 1
