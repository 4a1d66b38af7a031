# gateway: the entry point: route groups, WebSocket pass-through, auth, rate limits.
# For ops who register by file; the service registers the same itself when CONSUL_HTTP_ADDR is
# set (same id scheme <name>-<address>-<port>, tags and checks). One file per instance: copy it
# and change id, address and port for each.
#   consul services register consul/gateway.hcl
#   consul services deregister -id=gateway-127.0.0.1-8080
service {
  id      = "gateway-127.0.0.1-8080"
  name    = "gateway"
  address = "127.0.0.1"
  port    = 8080
  tags    = ["edge", "http", "websocket"]
  meta    = { version = "0.1.0" }

  check {
    id       = "gateway-127.0.0.1-8080-ready"
    name     = "gateway ready"
    http     = "http://127.0.0.1:8080/health/ready"
    method   = "GET"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
