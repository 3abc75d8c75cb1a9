variable "name" {
  description = "Name prefix of the topic and alarms, e.g. lessonloop-prod."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the alarm topic."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic."
  type        = list(string)
}

variable "alb_arn_suffix" {
  description = "LoadBalancer dimension of the ALB's metrics."
  type        = string
}

variable "lesson_start_target_group_arn_suffix" {
  description = "TargetGroup dimension of the lesson-start target group (POST /v1/courses/*/lessons)."
  type        = string
}

variable "lesson_start_p99_ms" {
  description = "Alarm threshold for the p99 lesson-start target response time, in ms."
  type        = number
}

variable "http_5xx_percent" {
  description = "Alarm threshold for 5xx responses as a percentage of requests."
  type        = number
}

variable "queue_depth_thresholds" {
  description = "Alarm threshold of Lessonloop/QueueDepth by queue name."
  type        = map(number)
}
