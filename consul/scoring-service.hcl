# Register with a local agent: consul services register consul/scoring-service.hcl
# REST and gRPC share the port; the gRPC check asks grpc.health.v1 about the service itself.
service {
  id   = "scoring-service-1"
  name = "scoring-service"
  port = 8083
  tags = ["scoring", "grpc", "http"]

  check {
    id       = "scoring-service-1-grpc"
    name     = "scoring.ScoringService serving"
    grpc     = "127.0.0.1:8083/scoring.ScoringService"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }

  check {
    id       = "scoring-service-1-ready"
    name     = "scoring-service ready"
    http     = "http://127.0.0.1:8083/health/ready"
    interval = "10s"
    timeout  = "2s"
  }
}
