# emotion-service: frame analysis (gRPC and REST on one port).
# For ops who register by file; the service registers the same itself when CONSUL_HTTP_ADDR is
# set (same id scheme <name>-<address>-<port>, tags and checks). One file per instance: copy it
# and change id, address and port for each.
#   consul services register consul/emotion-service.hcl
#   consul services deregister -id=emotion-service-127.0.0.1-8082
service {
  id      = "emotion-service-127.0.0.1-8082"
  name    = "emotion-service"
  address = "127.0.0.1"
  port    = 8082
  tags    = ["ml", "grpc", "http"]
  meta    = { version = "0.1.0" }

  check {
    id       = "emotion-service-127.0.0.1-8082-ready"
    name     = "emotion-service ready"
    http     = "http://127.0.0.1:8082/health/ready"
    method   = "GET"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }

  # grpc.health.v1 asked about the service itself: an instance without its models reads critical.
  check {
    id           = "emotion-service-127.0.0.1-8082-grpc"
    name         = "emotion-service gRPC health"
    grpc         = "127.0.0.1:8082/emotion.EmotionService"
    grpc_use_tls = false
    interval     = "10s"
    timeout      = "2s"
    deregister_critical_service_after = "1m"
  }
}
