#!/usr/bin/env bash
# Builds and runs the whole backend in one process on embedded defaults (SQLite under ./data,
# in-process event bus): gateway on http://127.0.0.1:8080. Extra arguments go to cargo.
# Set AMQP_URL / DATABASE_URL to run the same stack on RabbitMQ / PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/fetch-assets.sh
./scripts/web.sh
exec cargo run --release --locked -p iv-stack --bin stack "$@"
