# Register with a local agent: consul services register consul/emotion-service.hcl
# REST and gRPC share the port; the gRPC check asks grpc.health.v1 about the service itself.
service {
  id   = "emotion-service-1"
  name = "emotion-service"
  port = 8082
  tags = ["ml", "grpc", "http"]

  check {
    id       = "emotion-service-1-grpc"
    name     = "emotion.EmotionService serving"
    grpc     = "127.0.0.1:8082/emotion.EmotionService"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }

  check {
    id       = "emotion-service-1-ready"
    name     = "emotion-service ready"
    http     = "http://127.0.0.1:8082/health/ready"
    interval = "10s"
    timeout  = "2s"
  }
}
