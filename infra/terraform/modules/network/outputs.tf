output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (ALB, NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "app_subnet_ids" {
  description = "Private subnets of the ECS tasks."
  value       = aws_subnet.app[*].id
}

output "data_subnet_ids" {
  description = "Private subnets of RDS and ElastiCache (no route out of the VPC)."
  value       = aws_subnet.data[*].id
}

output "security_group_ids" {
  description = "Security group per role: alb, web, worker, postgres, redis, endpoints."
  value = {
    alb       = aws_security_group.alb.id
    web       = aws_security_group.web.id
    worker    = aws_security_group.worker.id
    postgres  = aws_security_group.postgres.id
    redis     = aws_security_group.redis.id
    endpoints = aws_security_group.endpoints.id
  }
}
