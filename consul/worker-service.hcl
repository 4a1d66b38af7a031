# Register with a local agent: consul services register consul/worker-service.hcl
service {
  id   = "worker-service-1"
  name = "worker-service"
  port = 8084
  tags = ["worker", "amqp"]

  check {
    id       = "worker-service-1-ready"
    name     = "worker-service ready"
    http     = "http://127.0.0.1:8084/health/ready"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
