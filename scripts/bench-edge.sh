#!/usr/bin/env bash
# What the edge adds: GET /api/v1/interviews/:id straight to the interview service, through the
# gateway, and through nginx (this repository's nginx.conf and upstreams.conf), measured with wrk.
# The servers share core 0 and wrk runs on core 1 (32 connections, one thread), so the figures
# compare the proxies, not the scheduler. Every server logs each request, as in production.
#
#   bash scripts/bench-edge.sh                  # median of 3 runs of 10 s per path
#   RUNS=5 SECONDS_PER_RUN=20 bash scripts/bench-edge.sh
#
# Installs wrk (Debian's package) and nginx (scripts/tools.sh) when missing; builds the release
# stack binary. Needs two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONNECTIONS=32
DIRECT_PORT=18581 GATEWAY_PORT=18580 NGINX_PORT=18500

log() { printf 'bench-edge: %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
./scripts/tools.sh
cargo build --release --locked -p iv-stack --bin stack >&2
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

work="$(mktemp -d)"
pids=()
cleanup() {
  if [ -f "$work/nginx.pid" ]; then "$NGINX" -p "$work" -c "$work/nginx.conf" -g "pid $work/nginx.pid;" -s stop 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  log "$1 did not answer"
  exit 1
}

# One installation: one signing key and one service credential for every process.
export AUTH_SIGNING_KEY_FILE="$work/signing-key.pem"
SERVICE_SECRET="$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')"
export SERVICE_SECRET

# One service a process, as deployed, on core 0.
serve() {
  local name="$1"; shift
  env BIND_HOST=127.0.0.1 DATA_DIR="$work/$name" RUST_LOG=info STACK_SERVICES="$name" "$@" \
    taskset -c 0 target/release/stack >"$work/$name.log" 2>&1 &
  pids+=("$!")
}
serve interview INTERVIEW_PORT="$DIRECT_PORT"
wait_for "http://127.0.0.1:$DIRECT_PORT/health"
serve gateway GATEWAY_PORT="$GATEWAY_PORT" INTERVIEW_URL="http://127.0.0.1:$DIRECT_PORT" \
  GATEWAY_RATE_PER_MINUTE=0
wait_for "http://127.0.0.1:$GATEWAY_PORT/health"

# The repository's nginx configuration; only the listen port, the logs and the gateway's
# address differ.
sed -e "s|^\( *\)listen .*;|\1listen 127.0.0.1:$NGINX_PORT;|" \
    -e "s|^\( *\)access_log .*;|\1access_log $work/nginx-access.log main;|" \
    nginx/nginx.conf >"$work/nginx.conf"
sed -e "/upstream gateway/,/}/ s|server 127.0.0.1:[0-9]*|server 127.0.0.1:$GATEWAY_PORT|" \
    nginx/upstreams.conf >"$work/upstreams.conf"
taskset -c 0 "$NGINX" -p "$work" -c "$work/nginx.conf" \
  -g "daemon off; pid $work/nginx.pid; error_log $work/nginx-error.log notice;" &
pids+=("$!")
wait_for "http://127.0.0.1:$NGINX_PORT/health"

# The gateway and nginx take the first admin's token; the service itself, the identity the
# gateway asserts for that admin, so every path does an admin's read (each one audited).
token="$(target/release/stack mint-token --role admin)"
assertion="$(target/release/stack mint-token --role admin --assert)"
id="$(curl -fsS -X POST -H 'content-type: application/json' -H "authorization: Bearer $token" \
  -d '{"user_id":"bench","consent":true}' "http://127.0.0.1:$GATEWAY_PORT/api/v1/interviews/start" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
path="/api/v1/interviews/$id"

# wrk's requests/s, p50 and p99 (ms) of one run.
measure() {
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -H "$2" "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(rps, p50, p99, errors.group(1) if errors else 0)'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; servers on core 0, wrk on core 1"
echo "GET $path, $CONNECTIONS connections, median of $RUNS runs of ${SECONDS_PER_RUN}s"
printf '%-10s %12s %10s %10s %8s\n' path 'requests/s' 'p50 ms' 'p99 ms' 'non-2xx'
for target in "direct http://127.0.0.1:$DIRECT_PORT" "gateway http://127.0.0.1:$GATEWAY_PORT" "nginx http://127.0.0.1:$NGINX_PORT"; do
  set -- $target
  results=()
  if [ "$1" = direct ]; then header="x-iv-identity: $assertion"; else header="authorization: Bearer $token"; fi
  for _ in $(seq 1 "$RUNS"); do results+=("$(measure "$2$path" "$header")"); done
  printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
runs = "/".join(f"{r[0]:.0f}" for r in rows)
print(f"{sys.argv[1]:<10} {med[0]:>12.0f} {med[1]:>10.2f} {med[2]:>10.2f} {int(sum(r[3] for r in rows)):>8}   runs: {runs}")' "$1"
done
