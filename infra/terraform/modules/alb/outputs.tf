output "dns_name" {
  description = "DNS name of the ALB (point api_host_name and portal_host_name at it)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 zone id of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "arn_suffix" {
  description = "ALB ARN suffix (the LoadBalancer dimension of AWS/ApplicationELB metrics)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arns" {
  description = "Target group ARN by name: api, lesson-start (both served by the API service), portal."
  value       = { for key, group in aws_lb_target_group.this : key => group.arn }
}

output "target_group_arn_suffixes" {
  description = "Target group ARN suffix by name (the TargetGroup dimension of AWS/ApplicationELB metrics)."
  value       = { for key, group in aws_lb_target_group.this : key => group.arn_suffix }
}
