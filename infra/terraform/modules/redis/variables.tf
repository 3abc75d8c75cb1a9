variable "name" {
  description = "Replication group id, e.g. lessonloop-prod-playlists (at most 40 characters)."
  type        = string
}

variable "purpose" {
  description = "What the group stores (its description in the console)."
  type        = string
}

variable "cluster_mode" {
  description = "true: Redis Cluster sharded over `shards` node groups (playlists); false: one primary with replicas (arq queues, which need a single Redis)."
  type        = bool
}

variable "shards" {
  description = "Node groups; must be 1 when cluster_mode is false."
  type        = number
}

variable "replicas_per_shard" {
  description = "Replicas per node group (1 to 5); at least 1 for automatic failover and multi-AZ."
  type        = number

  validation {
    condition     = var.replicas_per_shard >= 1 && var.replicas_per_shard <= 5
    error_message = "replicas_per_shard must be 1 to 5."
  }
}

variable "node_type" {
  description = "ElastiCache node type, e.g. cache.r7g.large."
  type        = string
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "maxmemory_policy" {
  description = "Eviction policy: volatile-lru for playlists (a miss falls back to the cold path), noeviction for queues (a job must never vanish)."
  type        = string
}

variable "subnet_ids" {
  description = "Data-tier subnets, one per zone."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group admitting the app tasks on 6379."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest and the slow-log group."
  type        = string
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots kept."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days the slow log is kept in CloudWatch."
  type        = number
}
