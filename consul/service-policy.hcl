# The ACL policy of the services' Consul token, with ACLs on and the default policy deny:
# each instance registers itself (and its checks) and reads the others' health, nothing more.
#   consul acl policy create -name ai-interview-services -rules @consul/service-policy.hcl
#   consul acl token create -description "ai-interview services" -policy-name ai-interview-services
# The token goes to every service as CONSUL_HTTP_TOKEN.
service_prefix "" {
  policy = "read"
}
service "gateway" {
  policy = "write"
}
service "interview-service" {
  policy = "write"
}
service "emotion-service" {
  policy = "write"
}
service "scoring-service" {
  policy = "write"
}
service "worker-service" {
  policy = "write"
}
node_prefix "" {
  policy = "read"
}
agent_prefix "" {
  policy = "read"
}
