# scoring-service: answer and interview scores, reports (gRPC and REST on one port).
# For ops who register by file; the service registers the same itself when CONSUL_HTTP_ADDR is
# set (same id scheme <name>-<address>-<port>, tags and checks). One file per instance: copy it
# and change id, address and port for each.
#   consul services register consul/scoring-service.hcl
#   consul services deregister -id=scoring-service-127.0.0.1-8083
service {
  id      = "scoring-service-127.0.0.1-8083"
  name    = "scoring-service"
  address = "127.0.0.1"
  port    = 8083
  tags    = ["scoring", "grpc", "http"]
  meta    = { version = "0.1.0" }

  check {
    id       = "scoring-service-127.0.0.1-8083-ready"
    name     = "scoring-service ready"
    http     = "http://127.0.0.1:8083/health/ready"
    method   = "GET"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }

  # grpc.health.v1 asked about the service itself: an instance without its models reads critical.
  check {
    id           = "scoring-service-127.0.0.1-8083-grpc"
    name         = "scoring-service gRPC health"
    grpc         = "127.0.0.1:8083/scoring.ScoringService"
    grpc_use_tls = false
    interval     = "10s"
    timeout      = "2s"
    deregister_critical_service_after = "1m"
  }
}
