# terraform apply -var-file=environments/prod.tfvars -var image_tag=<git sha>
# Values marked REPLACE are account-specific; see docs/deploy.md.

environment        = "prod"
aws_region         = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.10.0.0/16"
single_nat_gateway = false

certificate_arn     = "arn:aws:acm:eu-west-1:000000000000:certificate/REPLACE-with-prod-certificate-id"
api_host_name       = "api.lessonloop.example.com"
portal_host_name    = "portal.lessonloop.example.com"
waf_requests_per_ip = 20000

progress_backend   = "dynamodb"
jwks_url           = ""
jwks_issuer        = ""
jwks_audience      = ""
llm_api_keys       = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
openai_base_url    = ""
anthropic_base_url = ""

api     = { cpu = 1024, memory = 2048, min_count = 3, max_count = 60, cpu_target_percent = 50 }
portal  = { cpu = 512, memory = 1024, min_count = 2, max_count = 6, cpu_target_percent = 60 }
factory = { cpu = 1024, memory = 2048, min_count = 2, max_count = 30, jobs_per_task = 20 }
curator = { cpu = 1024, memory = 2048, min_count = 2, max_count = 40, jobs_per_task = 200 }

db_instance_class           = "db.r6g.xlarge"
db_allocated_storage_gb     = 200
db_max_allocated_storage_gb = 2000
db_backup_retention_days    = 35

playlist_redis_node_type          = "cache.r7g.large"
playlist_redis_shards             = 3
playlist_redis_replicas_per_shard = 1
queue_redis_node_type             = "cache.r7g.large"
queue_redis_replicas              = 2

deletion_protection = true
log_retention_days  = 365
alarm_emails        = ["oncall@lessonloop.example.com"]

lesson_start_p99_ms = 150
http_5xx_percent    = 1
queue_depth_alarm   = { generation_jobs = 2000, refill_check = 20000 }
