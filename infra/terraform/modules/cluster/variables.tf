variable "name" {
  description = "Name of the ECS cluster and the ECR repository, e.g. lessonloop-prod."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the image repository."
  type        = string
}

variable "images_to_keep" {
  description = "Most recent images kept in the repository (older ones expire)."
  type        = number
  default     = 50
}
