# terraform apply -var-file=environments/staging.tfvars -var image_tag=<git sha>
# Values marked REPLACE are account-specific; see docs/deploy.md.

environment        = "staging"
aws_region         = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b"]
vpc_cidr           = "10.20.0.0/16"
single_nat_gateway = true

certificate_arn     = "arn:aws:acm:eu-west-1:000000000000:certificate/REPLACE-with-staging-certificate-id"
api_host_name       = "api.staging.lessonloop.example.com"
portal_host_name    = "portal.staging.lessonloop.example.com"
waf_requests_per_ip = 20000

progress_backend   = "dynamodb"
jwks_url           = ""
jwks_issuer        = ""
jwks_audience      = ""
llm_api_keys       = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
openai_base_url    = ""
anthropic_base_url = ""

api     = { cpu = 512, memory = 1024, min_count = 1, max_count = 4, cpu_target_percent = 60 }
portal  = { cpu = 256, memory = 512, min_count = 1, max_count = 2, cpu_target_percent = 60 }
factory = { cpu = 512, memory = 1024, min_count = 1, max_count = 4, jobs_per_task = 20 }
curator = { cpu = 512, memory = 1024, min_count = 1, max_count = 4, jobs_per_task = 200 }

db_instance_class           = "db.t4g.medium"
db_allocated_storage_gb     = 20
db_max_allocated_storage_gb = 100
db_backup_retention_days    = 7

playlist_redis_node_type          = "cache.t4g.small"
playlist_redis_shards             = 1
playlist_redis_replicas_per_shard = 1
queue_redis_node_type             = "cache.t4g.small"
queue_redis_replicas              = 1

deletion_protection = false
log_retention_days  = 90
alarm_emails        = []

lesson_start_p99_ms = 250
http_5xx_percent    = 5
queue_depth_alarm   = { generation_jobs = 500, refill_check = 5000 }
