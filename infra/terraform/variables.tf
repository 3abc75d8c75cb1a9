# Every environment difference lives here; environments/<env>.tfvars sets the values.
# The two tfvars files define the same names (tests/infra checks it).

# --- where ------------------------------------------------------------------------------------

variable "environment" {
  description = "Environment name (staging or prod); part of every resource name."
  type        = string

  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment must be staging or prod."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into, e.g. eu-west-1."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to spread subnets, NAT gateways, RDS and ElastiCache replicas over (2 to 4)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4
    error_message = "Use 2 to 4 availability zones (multi-AZ RDS and ElastiCache need at least 2)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (a /16 is split into /20 public, app and data subnets per zone)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway instead of one per zone (cheaper; an AZ outage cuts workers' egress)."
  type        = bool
}

# --- edge -------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate (in aws_region) covering api_host_name and portal_host_name, for the ALB's HTTPS listener."
  type        = string

  validation {
    condition     = startswith(var.certificate_arn, "arn:aws:acm:")
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "api_host_name" {
  description = "Host name learners' apps call (DNS CNAME/alias to the ALB); requests with this Host header go to the API service."
  type        = string
}

variable "portal_host_name" {
  description = "Host name of the review portal; requests with this Host header go to the portal service."
  type        = string
}

variable "waf_requests_per_ip" {
  description = "Requests one client IP may make in 5 minutes before the WAF blocks it; a whole school behind one NAT address shares it."
  type        = number
}

# --- application --------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the lessonloop image in the environment's ECR repository (immutable; the git SHA). Pass with -var at apply time."
  type        = string
}

variable "progress_backend" {
  description = "Durable progress store the app uses: dynamodb (the table this stack creates) or postgres."
  type        = string

  validation {
    condition     = contains(["dynamodb", "postgres"], var.progress_backend)
    error_message = "progress_backend must be dynamodb or postgres."
  }
}

variable "jwks_url" {
  description = "JWKS URL of an external identity provider (RS256 tokens); empty = HS256 tokens signed with the generated token secret."
  type        = string
}

variable "jwks_issuer" {
  description = "`iss` claim of the identity provider's tokens (LESSONLOOP_JWKS_ISSUER); required with jwks_url."
  type        = string

  validation {
    condition     = var.jwks_url == "" || var.jwks_issuer != ""
    error_message = "jwks_issuer is required when jwks_url is set."
  }
}

variable "jwks_audience" {
  description = "`aud` claim the identity provider issues this API's tokens with (LESSONLOOP_JWKS_AUDIENCE); required with jwks_url."
  type        = string

  validation {
    condition     = var.jwks_url == "" || var.jwks_audience != ""
    error_message = "jwks_audience is required when jwks_url is set."
  }
}

variable "llm_api_keys" {
  description = "LLM provider keys the factory gets, each from its own operator-filled secret: OPENAI_API_KEY and/or ANTHROPIC_API_KEY. Empty = generation runs on the offline rule-based tier only."
  type        = list(string)

  validation {
    condition     = alltrue([for name in var.llm_api_keys : contains(["OPENAI_API_KEY", "ANTHROPIC_API_KEY"], name)])
    error_message = "llm_api_keys may hold OPENAI_API_KEY and ANTHROPIC_API_KEY only."
  }
}

variable "openai_base_url" {
  description = "OPENAI_BASE_URL for the factory (any OpenAI-compatible endpoint); empty = the provider's default."
  type        = string
}

variable "anthropic_base_url" {
  description = "ANTHROPIC_BASE_URL for the factory; empty = the provider's default."
  type        = string
}

variable "api" {
  description = "Lesson API service: Fargate task size (cpu units, memory MiB), task count bounds, and the average CPU % autoscaling holds."
  type = object({
    cpu                = number
    memory             = number
    min_count          = number
    max_count          = number
    cpu_target_percent = number
  })
}

variable "portal" {
  description = "Review portal service: Fargate task size, task count bounds, and the average CPU % autoscaling holds."
  type = object({
    cpu                = number
    memory             = number
    min_count          = number
    max_count          = number
    cpu_target_percent = number
  })
}

variable "factory" {
  description = "Factory workers (queue generation_jobs): Fargate task size, task count bounds, and the waiting jobs per running task autoscaling holds."
  type = object({
    cpu           = number
    memory        = number
    min_count     = number
    max_count     = number
    jobs_per_task = number
  })
}

variable "curator" {
  description = "Curator workers (queue refill_check): Fargate task size, task count bounds, and the waiting refills per running task autoscaling holds."
  type = object({
    cpu           = number
    memory        = number
    min_count     = number
    max_count     = number
    jobs_per_task = number
  })
}

# --- data stores ------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class, e.g. db.r6g.large."
  type        = string
}

variable "db_allocated_storage_gb" {
  description = "Initial RDS storage in GiB (gp3)."
  type        = number
}

variable "db_max_allocated_storage_gb" {
  description = "Ceiling for RDS storage autoscaling in GiB."
  type        = number
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups; point-in-time recovery reaches back this far (1 to 35)."
  type        = number

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be 1 to 35 (0 would disable point-in-time recovery)."
  }
}

variable "playlist_redis_node_type" {
  description = "ElastiCache node type of the playlist cluster, e.g. cache.r7g.large."
  type        = string
}

variable "playlist_redis_shards" {
  description = "Shards (node groups) of the playlist cluster; playlists spread over them by learner bucket hash tag."
  type        = number
}

variable "playlist_redis_replicas_per_shard" {
  description = "Replicas per playlist shard (at least 1: automatic failover)."
  type        = number
}

variable "queue_redis_node_type" {
  description = "ElastiCache node type of the queue Redis (arq queues and shared circuit-breaker state)."
  type        = string
}

variable "queue_redis_replicas" {
  description = "Replicas of the queue Redis primary (at least 1: automatic failover)."
  type        = number
}

variable "deletion_protection" {
  description = "Protect the database, the progress table and the load balancer from deletion."
  type        = bool
}

# --- operations -------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Days CloudWatch keeps service, VPC flow, WAF and Redis logs."
  type        = number
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
}

variable "lesson_start_p99_ms" {
  description = "Alarm when the p99 of POST /v1/courses/{course}/lessons (ALB target response time) exceeds this, in ms."
  type        = number
}

variable "http_5xx_percent" {
  description = "Alarm when 5xx responses (target and ALB) exceed this percentage of requests."
  type        = number
}

variable "queue_depth_alarm" {
  description = "Alarm when a queue's QueueDepth stays above this many jobs, by queue name."
  type = object({
    generation_jobs = number
    refill_check    = number
  })
}
