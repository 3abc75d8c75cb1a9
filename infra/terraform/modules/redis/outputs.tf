locals {
  # Clients discover the shards from the configuration endpoint in cluster mode.
  endpoint = var.cluster_mode ? aws_elasticache_replication_group.this.configuration_endpoint_address : aws_elasticache_replication_group.this.primary_endpoint_address
}

output "url" {
  description = "rediss:// URL with the AUTH token: the configuration endpoint in cluster mode, the primary endpoint otherwise."
  sensitive   = true
  value       = "rediss://:${random_password.auth_token.result}@${local.endpoint}:${aws_elasticache_replication_group.this.port}"
}

output "replication_group_id" {
  description = "ID of the replication group."
  value       = aws_elasticache_replication_group.this.id
}
