#!/usr/bin/env bash
# Runs every check and test: formatting, clippy with warnings as errors, the whole test suite
# (unit, contract, end-to-end against the local RabbitMQ and PostgreSQL), then the fault tests
# (stack/tests/faults) on their own, one at a time: they kill services and restart RabbitMQ.
# Fetches the test media first when missing and starts RabbitMQ/PostgreSQL when they are down.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh
./scripts/fetch-assets.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E 'not binary(faults)'
  cargo nextest run --workspace --locked --no-fail-fast -E 'binary(faults)' --test-threads 1
else
  # cargo test runs one test binary at a time; the fault tests hold one lock among themselves.
  cargo test --workspace --locked --no-fail-fast
fi
