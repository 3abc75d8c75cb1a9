variable "name" {
  description = "Name prefix, e.g. lessonloop-prod."
  type        = string
}

variable "aws_region" {
  description = "Region, for the VPC endpoints' service names."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; each tier (public, app, data) gets one /20 (of a /16) per zone."
  type        = string
}

variable "availability_zones" {
  description = "Zones to create one public, one app and one data subnet in (2 to 4)."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone."
  type        = bool
}

variable "app_port" {
  description = "Port the API and portal containers listen on (the ALB forwards to it)."
  type        = number
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints from the app subnets (S3 and DynamoDB use gateway endpoints)."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring", "kms", "sts"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days the VPC flow logs are kept."
  type        = number
}
