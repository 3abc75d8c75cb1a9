variable "name" {
  description = "Instance identifier, e.g. lessonloop-prod."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version (RDS ships pgvector from 15.2; minor versions upgrade automatically)."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "RDS instance class, e.g. db.r6g.large."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage in GiB."
  type        = number
}

variable "max_allocated_storage_gb" {
  description = "Ceiling for storage autoscaling in GiB."
  type        = number
}

variable "backup_retention_days" {
  description = "Days of automated backups; point-in-time recovery reaches back this far."
  type        = number
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (a final snapshot is taken regardless)."
  type        = bool
}

variable "database_name" {
  description = "Database the app connects to."
  type        = string
  default     = "lessonloop"
}

variable "master_username" {
  description = "Master user the app connects as (owner of the schema; creates the vector extension)."
  type        = string
  default     = "lessonloop"
}

variable "subnet_ids" {
  description = "Data-tier subnets, one per zone."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group admitting the app tasks on 5432."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, snapshots and Performance Insights."
  type        = string
}
