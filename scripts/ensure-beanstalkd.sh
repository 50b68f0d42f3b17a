#!/usr/bin/env bash
# Prints the path of a usable beanstalkd binary on stdout and nothing else, so callers can
# capture it with $(...). Every message goes to stderr. This script never starts a server:
# the test harness starts its own, bound to 127.0.0.1 on a free port.
set -euo pipefail

log() { printf 'ensure-beanstalkd: %s\n' "$*" >&2; }

found() {
  printf '%s\n' "$1"
  exit 0
}

# 1. An explicit choice wins, but a wrong one must not be silently replaced by another binary.
if [[ -n "${BEANSTALKD_BIN:-}" ]]; then
  if [[ -x "${BEANSTALKD_BIN}" && ! -d "${BEANSTALKD_BIN}" ]]; then
    found "${BEANSTALKD_BIN}"
  fi
  log "BEANSTALKD_BIN=${BEANSTALKD_BIN} is not an executable file; looking elsewhere"
fi

# 2. Whatever is on PATH.
if path_hit="$(command -v beanstalkd 2>/dev/null)" && [[ -n "${path_hit}" && -x "${path_hit}" ]]; then
  found "${path_hit}"
fi

# 3. Usual install locations, for environments whose PATH omits sbin or /usr/local/bin.
for candidate in /usr/bin/beanstalkd /usr/sbin/beanstalkd /usr/local/bin/beanstalkd; do
  if [[ -x "${candidate}" ]]; then
    found "${candidate}"
  fi
done

# 4. Try to install it, but only where that needs no password prompt (CI must never hang).
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

  # Refreshing the package lists is slow, so only do it when apt does not know the package yet.
  local candidate_version
  candidate_version="$(apt-cache policy beanstalkd 2>/dev/null | awk '/Candidate:/ { print $2 }' || true)"
  if [[ -z "${candidate_version}" || "${candidate_version}" == "(none)" ]]; then
    log "running apt-get update"
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  fi

  log "installing beanstalkd with apt-get"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq beanstalkd >&2 || return 1
  return 0
}

if command -v apt-get >/dev/null 2>&1; then
  if install_with_apt; then
    hash -r
    if path_hit="$(command -v beanstalkd 2>/dev/null)" && [[ -n "${path_hit}" && -x "${path_hit}" ]]; then
      found "${path_hit}"
    fi
    for candidate in /usr/bin/beanstalkd /usr/sbin/beanstalkd /usr/local/bin/beanstalkd; do
      if [[ -x "${candidate}" ]]; then
        found "${candidate}"
      fi
    done
    log "apt-get install finished but no beanstalkd binary was found"
  else
    log "could not install beanstalkd with apt-get"
  fi
fi

# Homebrew installs are left to the user: they are slow and may upgrade unrelated packages.
if command -v brew >/dev/null 2>&1; then
  log "Homebrew detected: run 'brew install beanstalkd', then try again"
fi

cat >&2 <<'MSG'
ensure-beanstalkd: beanstalkd was not found and could not be installed automatically.
Install it with one of:
  Debian/Ubuntu: sudo apt-get install beanstalkd
  macOS:         brew install beanstalkd
or point to an existing binary: BEANSTALKD_BIN=/path/to/beanstalkd
MSG
exit 1
