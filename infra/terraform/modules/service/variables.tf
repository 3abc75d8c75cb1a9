variable "name" {
  description = "Service name, e.g. lessonloop-prod-api; also names its roles, log group and task family."
  type        = string
}

variable "aws_region" {
  description = "Region, for the awslogs driver and the KMS ViaService condition."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster to run in."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (autoscaling resource id, Container Insights dimension)."
  type        = string
}

variable "image" {
  description = "Full image reference, <repository url>:<tag>."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository the execution role may pull from."
  type        = string
}

variable "command" {
  description = "Container command, e.g. [\"lessonloop\", \"worker\", \"factory\"]."
  type        = list(string)
}

variable "cpu" {
  description = "Fargate task CPU units (256, 512, 1024, 2048, 4096, ...)."
  type        = number
}

variable "memory" {
  description = "Fargate task memory in MiB (must suit cpu)."
  type        = number
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (Graviton); the image must be built for it."
  type        = string
  default     = "X86_64"
}

variable "container_port" {
  description = "Port the container listens on (the API's; a worker's metrics endpoint); null for none."
  type        = number
  default     = null
}

variable "target_group_arns" {
  description = "ALB target groups the tasks register in (empty for workers)."
  type        = list(string)
  default     = []
}

variable "subnet_ids" {
  description = "Private app subnets the tasks run in."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "environment" {
  description = "Plain environment variables (nothing secret: tests/infra rejects secret-like names here)."
  type        = map(string)
}

variable "secrets" {
  description = "Environment variable name -> Secrets Manager secret ARN, injected by ECS at task start; the execution role may read exactly these."
  type        = map(string)

  validation {
    condition     = length(var.secrets) > 0
    error_message = "Every service reads at least DATABASE_URL from a secret."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the secrets and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days the service's logs are kept."
  type        = number
}

variable "task_policy_json" {
  description = "IAM policy document (JSON) of the task role: what the app itself may call in AWS."
  type        = string
}

variable "min_count" {
  description = "Fewest running tasks (at least 1: workers divide their queue depth by the running count)."
  type        = number

  validation {
    condition     = var.min_count >= 1
    error_message = "min_count must be at least 1."
  }
}

variable "max_count" {
  description = "Most running tasks autoscaling may start."
  type        = number
}

variable "autoscaling" {
  description = <<-EOT
    Target-tracking autoscaling. metric = "cpu": hold average CPU at `target` percent.
    metric = "queue_depth": hold Lessonloop/QueueDepth{Queue = queue} divided by the running
    task count at `target` waiting jobs per task.
  EOT
  type = object({
    metric = string
    target = number
    queue  = optional(string)
  })

  validation {
    condition     = var.autoscaling.metric == "cpu" || (var.autoscaling.metric == "queue_depth" && var.autoscaling.queue != null)
    error_message = "autoscaling.metric must be cpu, or queue_depth with a queue."
  }
}

variable "stop_timeout_seconds" {
  description = "Seconds between SIGTERM and SIGKILL (Fargate allows up to 120): time to finish in-flight requests or jobs."
  type        = number
  default     = 60
}
