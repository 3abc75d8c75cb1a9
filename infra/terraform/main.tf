# Lessonloop on AWS. One root module, one state per environment:
#   terraform init -backend-config=environments/<env>.s3.tfbackend
#   terraform apply -var-file=environments/<env>.tfvars -var image_tag=<git sha>
# docs/deploy.md walks through it. The services themselves are in services.tf.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "lessonloop"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

locals {
  name     = "lessonloop-${var.environment}"
  app_port = 8000
}

module "kms" {
  source = "./modules/kms"

  name       = local.name
  aws_region = var.aws_region
}

module "network" {
  source = "./modules/network"

  name               = local.name
  aws_region         = var.aws_region
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  app_port           = local.app_port
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

# --- data stores ------------------------------------------------------------------------------

# Playlists: sharded by learner bucket hash tag, so cluster mode scales them out.
module "playlist_redis" {
  source = "./modules/redis"

  name               = "${local.name}-playlists"
  purpose            = "Lessonloop ${var.environment} playlist store (REDIS_URL)"
  cluster_mode       = true
  shards             = var.playlist_redis_shards
  replicas_per_shard = var.playlist_redis_replicas_per_shard
  node_type          = var.playlist_redis_node_type
  maxmemory_policy   = "volatile-lru"
  subnet_ids         = module.network.data_subnet_ids
  security_group_id  = module.network.security_group_ids["redis"]
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

# arq queues and shared circuit-breaker state: arq speaks to one Redis, not a cluster.
module "queue_redis" {
  source = "./modules/redis"

  name               = "${local.name}-queues"
  purpose            = "Lessonloop ${var.environment} job queues and breaker state (LESSONLOOP_QUEUE_REDIS_URL)"
  cluster_mode       = false
  shards             = 1
  replicas_per_shard = var.queue_redis_replicas
  node_type          = var.queue_redis_node_type
  maxmemory_policy   = "noeviction"
  subnet_ids         = module.network.data_subnet_ids
  security_group_id  = module.network.security_group_ids["redis"]
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "postgres" {
  source = "./modules/postgres"

  name                     = local.name
  instance_class           = var.db_instance_class
  allocated_storage_gb     = var.db_allocated_storage_gb
  max_allocated_storage_gb = var.db_max_allocated_storage_gb
  backup_retention_days    = var.db_backup_retention_days
  deletion_protection      = var.deletion_protection
  subnet_ids               = module.network.data_subnet_ids
  security_group_id        = module.network.security_group_ids["postgres"]
  kms_key_arn              = module.kms.key_arn
}

module "progress_table" {
  source = "./modules/progress_table"

  name                = "${local.name}-progress"
  kms_key_arn         = module.kms.key_arn
  deletion_protection = var.deletion_protection
}

module "secrets" {
  source = "./modules/secrets"

  name            = local.name
  kms_key_arn     = module.kms.key_arn
  database_url    = module.postgres.database_url
  redis_url       = module.playlist_redis.url
  queue_redis_url = module.queue_redis.url
  operator_filled = var.llm_api_keys
}

# --- compute, edge, alarms --------------------------------------------------------------------

module "cluster" {
  source = "./modules/cluster"

  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "alb" {
  source = "./modules/alb"

  name                = local.name
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  security_group_id   = module.network.security_group_ids["alb"]
  certificate_arn     = var.certificate_arn
  api_host_name       = var.api_host_name
  portal_host_name    = var.portal_host_name
  requests_per_ip     = var.waf_requests_per_ip
  app_port            = local.app_port
  deletion_protection = var.deletion_protection
  kms_key_arn         = module.kms.key_arn
  log_retention_days  = var.log_retention_days
}

module "alarms" {
  source = "./modules/alarms"

  name                                 = local.name
  kms_key_arn                          = module.kms.key_arn
  alarm_emails                         = var.alarm_emails
  alb_arn_suffix                       = module.alb.arn_suffix
  lesson_start_target_group_arn_suffix = module.alb.target_group_arn_suffixes["lesson-start"]
  lesson_start_p99_ms                  = var.lesson_start_p99_ms
  http_5xx_percent                     = var.http_5xx_percent
  queue_depth_thresholds = {
    generation_jobs = var.queue_depth_alarm.generation_jobs
    refill_check    = var.queue_depth_alarm.refill_check
  }
}
