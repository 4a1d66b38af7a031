# interview-service: sessions, answers, frames and the candidates' WebSockets.
# For ops who register by file; the service registers the same itself when CONSUL_HTTP_ADDR is
# set (same id scheme <name>-<address>-<port>, tags and checks). One file per instance: copy it
# and change id, address and port for each.
#   consul services register consul/interview-service.hcl
#   consul services deregister -id=interview-service-127.0.0.1-8081
service {
  id      = "interview-service-127.0.0.1-8081"
  name    = "interview-service"
  address = "127.0.0.1"
  port    = 8081
  tags    = ["api", "v1", "http", "websocket"]
  meta    = { version = "0.1.0" }

  check {
    id       = "interview-service-127.0.0.1-8081-ready"
    name     = "interview-service ready"
    http     = "http://127.0.0.1:8081/health/ready"
    method   = "GET"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
