# worker-service: event consumers; health and metrics only.
# For ops who register by file; the service registers the same itself when CONSUL_HTTP_ADDR is
# set (same id scheme <name>-<address>-<port>, tags and checks). One file per instance: copy it
# and change id, address and port for each.
#   consul services register consul/worker-service.hcl
#   consul services deregister -id=worker-service-127.0.0.1-8084
service {
  id      = "worker-service-127.0.0.1-8084"
  name    = "worker-service"
  address = "127.0.0.1"
  port    = 8084
  tags    = ["worker", "events"]
  meta    = { version = "0.1.0" }

  check {
    id       = "worker-service-127.0.0.1-8084-ready"
    name     = "worker-service ready"
    http     = "http://127.0.0.1:8084/health/ready"
    method   = "GET"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
