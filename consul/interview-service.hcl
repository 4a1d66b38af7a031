# Register with a local agent: consul services register consul/interview-service.hcl
service {
  id   = "interview-service-1"
  name = "interview-service"
  port = 8081
  tags = ["api", "v1", "http"]

  check {
    id       = "interview-service-1-ready"
    name     = "interview-service ready"
    http     = "http://127.0.0.1:8081/health/ready"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
