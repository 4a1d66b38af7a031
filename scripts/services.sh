#!/usr/bin/env bash
# Makes sure the local PostgreSQL and RabbitMQ the tests use are running, starting any that is
# down, and waits until both accept connections. Uses the machine's own service commands.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name="$1" port="$2" seconds="$3"
  for _ in $(seq 1 "$seconds"); do
    if port_open "$port"; then
      log "$name is up on 127.0.0.1:$port"
      return 0
    fi
    sleep 1
  done
  log "$name did not come up on 127.0.0.1:$port within ${seconds}s"
  return 1
}

if ! port_open 5432; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi
if ! port_open 5672; then
  log "starting RabbitMQ"
  if command -v rabbitmq-server >/dev/null; then
    rabbitmq-server -detached || true
  fi
fi
wait_for PostgreSQL 5432 60
wait_for RabbitMQ 5672 120
# The port opens a little before RabbitMQ accepts AMQP sessions.
if command -v rabbitmq-diagnostics >/dev/null; then
  for _ in $(seq 1 30); do
    rabbitmq-diagnostics -q check_running >/dev/null 2>&1 && break
    sleep 1
  done
fi
if command -v pg_isready >/dev/null; then
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
