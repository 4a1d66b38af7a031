#!/usr/bin/env bash
# Installs the pages' npm packages (web/package-lock.json: the chart library the gateway serves,
# axe-core for the browser tests' accessibility check) with npm's ordinary client, when missing or
# when the lock file changed. The pages themselves are plain ES modules: nothing is built.
set -euo pipefail
cd "$(dirname "$0")/../web"

log() { printf 'web: %s\n' "$*" >&2; }

if ! command -v npm >/dev/null; then
  log "npm is missing: install Node.js 20 or later (Debian: apt-get install nodejs npm)"
  exit 1
fi
stamp=node_modules/.lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the pages' packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  printf '%s\n' "$want" > "$stamp"
fi
