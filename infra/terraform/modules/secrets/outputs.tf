output "arns" {
  description = "Secret ARN by the environment variable it holds (DATABASE_URL, REDIS_URL, LESSONLOOP_QUEUE_REDIS_URL, LESSONLOOP_TOKEN_SECRET, and the operator-filled ones)."
  value       = { for env_name, secret in aws_secretsmanager_secret.this : env_name => secret.arn }
}
