#!/usr/bin/env bash
# Runs every check and test: formatting, clippy with warnings as errors, the deployment files'
# validators, the whole test suite (unit, contract, end-to-end against the local RabbitMQ and
# PostgreSQL), then the fault, scale-out and browser tests (stack/tests/faults, stack/tests/scale,
# stack/tests/browser) on their own, one at a time: they kill services, restart RabbitMQ, run nginx
# in front of real processes, and drive Chromium. Fetches the test media first when missing,
# installs nginx, Chromium and the validators when missing (scripts/tools.sh) and the pages' npm
# packages (scripts/web.sh), and starts RabbitMQ/PostgreSQL when they are down.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh
./scripts/fetch-assets.sh
./scripts/tools.sh
./scripts/web.sh
./scripts/validate-deploy.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E 'not (binary(faults) | binary(scale) | binary(browser))'
  cargo nextest run --workspace --locked --no-fail-fast -E 'binary(faults) | binary(scale) | binary(browser)' --test-threads 1
else
  # cargo test runs one test binary at a time; the fault and scale tests each hold one lock.
  cargo test --workspace --locked --no-fail-fast
fi
