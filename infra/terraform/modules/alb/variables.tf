variable "name" {
  description = "Name prefix, e.g. lessonloop-prod (the ALB's name; at most 32 characters)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target groups."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets the ALB spans."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the ALB (443 and 80 in, app_port out)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "api_host_name" {
  description = "Host header routed to the API target groups."
  type        = string
}

variable "portal_host_name" {
  description = "Host header routed to the portal target group."
  type        = string
}

variable "requests_per_ip" {
  description = "WAF rate limit: requests per client IP per 5 minutes."
  type        = number
}

variable "app_port" {
  description = "Port the containers listen on."
  type        = number
}

variable "health_check_path" {
  description = "Path the ALB probes on each task (200 = ready for traffic)."
  type        = string
  default     = "/readyz"
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
}

variable "kms_key_arn" {
  description = "KMS key of the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days WAF logs are kept; ALB access logs expire from S3 after the same time."
  type        = number
}
