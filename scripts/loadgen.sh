#!/usr/bin/env bash
# Plays many candidates at once through the gateway's WebSocket and reports what they feel:
# frame -> emotion_update latency, the share of frames answered, errors, the emotion breaker's
# openings, and each service's CPU and memory. Starts the five services as separate release
# processes on the local RabbitMQ (AMQP_URL), or drives a running stack with --gateway URL.
#
#   bash scripts/loadgen.sh --candidates 20 --fps 5 --seconds 20 --runs 3
#   bash scripts/loadgen.sh --candidates 20 --spike 40 --spike-at 8 --spike-for 4
#
# Flags: `bash scripts/loadgen.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/fetch-assets.sh
cargo build --release --locked -p iv-stack --bin stack -p loadgen --bin loadgen
exec target/release/loadgen "$@"
