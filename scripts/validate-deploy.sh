#!/usr/bin/env bash
# Validates what ops deploy with, since no container engine or cluster runs here:
# - deploy/kubernetes/*.yaml against the Kubernetes 1.37 schemas, strictly (unknown fields fail);
# - deploy/compose.yaml against the Compose specification's schema;
# - deploy/Dockerfile with hadolint;
# - nginx/nginx.conf and its upstreams with `nginx -t`.
# The validators are installed by scripts/tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${AIV_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-interview/tools-venv}"
log() { printf 'validate-deploy: %s\n' "$*" >&2; }

# The generated secrets too (made here if missing; git-ignored, nothing committed).
./scripts/deploy-secrets.sh
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml deploy/generated/kubernetes-secrets.yaml
log "kubernetes manifests and generated Secrets: valid (strict, Kubernetes 1.37)"
# No password, token or key is written in what is committed.
if grep -nE '(PASSWORD|SECRET|TOKEN)[A-Z_]*: *[A-Za-z0-9]|://[^:@/ ]+:[^$@ ]+@' deploy/compose.yaml deploy/kubernetes/*.yaml; then
  log "a credential is written in the deployment files"
  exit 1
fi
log "deployment files: no credential written in them"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml >/dev/null
log "compose.yaml: valid (Compose specification)"
"$VENV/bin/hadolint" --config deploy/.hadolint.yaml deploy/Dockerfile
log "Dockerfile: hadolint clean"

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp nginx/nginx.conf nginx/upstreams.conf "$tmp/"
"$nginx_bin" -t -q -p "$tmp" -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log $tmp/error.log;"
log "nginx.conf: nginx -t accepts it"
