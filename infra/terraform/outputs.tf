output "alb_dns_name" {
  description = "Point api_host_name and portal_host_name here (CNAME, or a Route 53 alias with alb_zone_id)."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone id of the ALB, for alias records."
  value       = module.alb.zone_id
}

output "ecr_repository_url" {
  description = "Push images here as <url>:<git sha>, then apply with -var image_tag=<git sha>."
  value       = module.cluster.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running the four services."
  value       = module.cluster.cluster_name
}

output "service_names" {
  description = "ECS service name by role."
  value = {
    api     = module.api.service_name
    portal  = module.portal.service_name
    factory = module.factory.service_name
    curator = module.curator.service_name
  }
}

output "secret_arns" {
  description = "Secrets Manager ARN by environment variable; fill OPENAI_API_KEY and ANTHROPIC_API_KEY by hand (docs/deploy.md)."
  value       = module.secrets.arns
}

output "progress_table_name" {
  description = "DynamoDB progress table (LESSONLOOP_PROGRESS_TABLE)."
  value       = module.progress_table.name
}

output "alarm_topic_arn" {
  description = "SNS topic of every alarm."
  value       = module.alarms.topic_arn
}

output "run_task_network_configuration" {
  description = "--network-configuration for one-off tasks (migrations, curriculum loads) started with `aws ecs run-task`."
  value = jsonencode({
    awsvpcConfiguration = {
      subnets        = module.network.app_subnet_ids
      securityGroups = [module.network.security_group_ids["web"]]
      assignPublicIp = "DISABLED"
    }
  })
}
