variable "name" {
  description = "Name prefix, e.g. lessonloop-prod; the key's alias is alias/<name>."
  type        = string
}

variable "aws_region" {
  description = "Region of the stack (CloudWatch Logs' service principal is regional)."
  type        = string
}

variable "deletion_window_days" {
  description = "Days a scheduled key deletion can still be cancelled (7 to 30)."
  type        = number
  default     = 30
}
