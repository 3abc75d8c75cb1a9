variable "name" {
  description = "Name prefix; secrets are named <name>/<ENV_VAR_NAME>."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting every secret."
  type        = string
}

variable "database_url" {
  description = "DATABASE_URL value: a postgresql:// URL with the master credentials, sslmode=require."
  type        = string
  sensitive   = true
}

variable "redis_url" {
  description = "REDIS_URL value: a rediss:// URL of the playlist cluster's configuration endpoint with its AUTH token."
  type        = string
  sensitive   = true
}

variable "queue_redis_url" {
  description = "LESSONLOOP_QUEUE_REDIS_URL value: a rediss:// URL of the queue Redis primary endpoint with its AUTH token."
  type        = string
  sensitive   = true
}

variable "operator_filled" {
  description = "Secrets created without a value for an operator to fill (the LLM keys: OPENAI_API_KEY, ANTHROPIC_API_KEY)."
  type        = list(string)
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 7
}
