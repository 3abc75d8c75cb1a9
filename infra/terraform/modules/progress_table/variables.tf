variable "name" {
  description = "Table name; the app reads it from LESSONLOOP_PROGRESS_TABLE."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for server-side encryption."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table."
  type        = bool
}
