# Register with a local agent: consul services register consul/gateway.hcl
service {
  id   = "gateway-1"
  name = "gateway"
  port = 8080
  tags = ["api", "edge", "http"]

  check {
    id       = "gateway-1-ready"
    name     = "gateway ready"
    http     = "http://127.0.0.1:8080/health/ready"
    interval = "10s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
