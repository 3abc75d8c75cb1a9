# The four services: one image, four commands, four least-privilege task roles.
#
#   service  command                                      scales on                         task role may
#   api      lessonloop serve --host 0.0.0.0 --port 8000  CPU                               read/write progress
#   portal   lessonloop serve --host 0.0.0.0 --port 8000  CPU                               -
#   factory  lessonloop worker factory                    QueueDepth{generation_jobs}/task  -
#   curator  lessonloop worker curator                    QueueDepth{refill_check}/task     read progress
#
# Every task role may also publish metrics in the Lessonloop namespace (nothing else).
# Secrets reach the containers only through `secrets` (Secrets Manager ARNs), never `environment`;
# each execution role can read only the secrets its service injects: the LLM keys only the factory.

locals {
  image = "${module.cluster.repository_url}:${var.image_tag}"
  # `serve` binds 127.0.0.1 unless told otherwise; in a task the ALB reaches it on the task's IP.
  serve_command = ["lessonloop", "serve", "--host", "0.0.0.0", "--port", tostring(local.app_port)]
  # Each worker serves Prometheus /metrics on its kind's port (LESSONLOOP_WORKER_*_METRICS_PORT, the
  # defaults below) on the task's IP; the port is in the task definition for an ECS-aware scraper.
  # The worker security group admits nothing yet: a scraper outside the task needs a rule from it.
  worker_metrics_env   = { LESSONLOOP_WORKER_METRICS_HOST = "0.0.0.0" }
  factory_metrics_port = 9110
  curator_metrics_port = 9120
}

# --- task-role policies -------------------------------------------------------------------------

data "aws_iam_policy_document" "publish_metrics" {
  statement {
    sid       = "PublishLessonloopMetrics" # PutMetricData has no resource-level permissions
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Lessonloop"]
    }
  }
}

data "aws_iam_policy_document" "api_task" {
  source_policy_documents = [data.aws_iam_policy_document.publish_metrics.json]

  statement {
    sid = "ProgressReadWrite"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = [module.progress_table.arn]
  }

  statement {
    sid       = "ProgressTableKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "curator_task" {
  source_policy_documents = [data.aws_iam_policy_document.publish_metrics.json]

  statement {
    sid       = "ProgressRead"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
    resources = [module.progress_table.arn]
  }

  statement {
    sid       = "ProgressTableKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [module.kms.key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}

# --- services -----------------------------------------------------------------------------------

module "api" {
  source = "./modules/service"

  name               = "${local.name}-api"
  aws_region         = var.aws_region
  cluster_arn        = module.cluster.cluster_arn
  cluster_name       = module.cluster.cluster_name
  image              = local.image
  repository_arn     = module.cluster.repository_arn
  command            = local.serve_command
  container_port     = local.app_port
  target_group_arns  = [module.alb.target_group_arns["api"], module.alb.target_group_arns["lesson-start"]]
  cpu                = var.api.cpu
  memory             = var.api.memory
  min_count          = var.api.min_count
  max_count          = var.api.max_count
  autoscaling        = { metric = "cpu", target = var.api.cpu_target_percent }
  subnet_ids         = module.network.app_subnet_ids
  security_group_id  = module.network.security_group_ids["web"]
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  task_policy_json   = data.aws_iam_policy_document.api_task.json

  environment = merge(
    {
      AWS_REGION                  = var.aws_region
      LESSONLOOP_PROGRESS_BACKEND = var.progress_backend
      LESSONLOOP_PROGRESS_TABLE   = module.progress_table.name
      # Requests arrive from ALB nodes, addresses in the VPC (the web group admits only the ALB's):
      # X-Forwarded-For from them names the client, so per-address limits see clients, not the ALB.
      LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS = var.vpc_cidr
    },
    var.jwks_url == "" ? {} : {
      LESSONLOOP_JWKS_URL      = var.jwks_url
      LESSONLOOP_JWKS_ISSUER   = var.jwks_issuer
      LESSONLOOP_JWKS_AUDIENCE = var.jwks_audience
    },
  )

  secrets = {
    DATABASE_URL               = module.secrets.arns["DATABASE_URL"]
    REDIS_URL                  = module.secrets.arns["REDIS_URL"]
    LESSONLOOP_QUEUE_REDIS_URL = module.secrets.arns["LESSONLOOP_QUEUE_REDIS_URL"]
    LESSONLOOP_TOKEN_SECRET    = module.secrets.arns["LESSONLOOP_TOKEN_SECRET"]
    # every API process serves the portal too (lessonloop.app mounts it)
    LESSONLOOP_PORTAL_SESSION_SECRET = module.secrets.arns["LESSONLOOP_PORTAL_SESSION_SECRET"]
  }
}

module "portal" {
  source = "./modules/service"

  name               = "${local.name}-portal"
  aws_region         = var.aws_region
  cluster_arn        = module.cluster.cluster_arn
  cluster_name       = module.cluster.cluster_name
  image              = local.image
  repository_arn     = module.cluster.repository_arn
  command            = local.serve_command
  container_port     = local.app_port
  target_group_arns  = [module.alb.target_group_arns["portal"]]
  cpu                = var.portal.cpu
  memory             = var.portal.memory
  min_count          = var.portal.min_count
  max_count          = var.portal.max_count
  autoscaling        = { metric = "cpu", target = var.portal.cpu_target_percent }
  subnet_ids         = module.network.app_subnet_ids
  security_group_id  = module.network.security_group_ids["web"]
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  task_policy_json   = data.aws_iam_policy_document.publish_metrics.json

  environment = merge(
    {
      AWS_REGION                  = var.aws_region
      LESSONLOOP_PROGRESS_BACKEND = var.progress_backend
      LESSONLOOP_PROGRESS_TABLE   = module.progress_table.name
      # Requests arrive from ALB nodes, addresses in the VPC (the web group admits only the ALB's):
      # X-Forwarded-For from them names the client, so per-address limits see clients, not the ALB.
      LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS = var.vpc_cidr
    },
    var.jwks_url == "" ? {} : {
      LESSONLOOP_JWKS_URL      = var.jwks_url
      LESSONLOOP_JWKS_ISSUER   = var.jwks_issuer
      LESSONLOOP_JWKS_AUDIENCE = var.jwks_audience
    },
  )

  secrets = {
    DATABASE_URL               = module.secrets.arns["DATABASE_URL"]
    REDIS_URL                  = module.secrets.arns["REDIS_URL"]
    LESSONLOOP_QUEUE_REDIS_URL = module.secrets.arns["LESSONLOOP_QUEUE_REDIS_URL"]
    LESSONLOOP_TOKEN_SECRET    = module.secrets.arns["LESSONLOOP_TOKEN_SECRET"]
    # every API process serves the portal too (lessonloop.app mounts it)
    LESSONLOOP_PORTAL_SESSION_SECRET = module.secrets.arns["LESSONLOOP_PORTAL_SESSION_SECRET"]
  }
}

module "factory" {
  source = "./modules/service"

  name                 = "${local.name}-factory"
  aws_region           = var.aws_region
  cluster_arn          = module.cluster.cluster_arn
  cluster_name         = module.cluster.cluster_name
  image                = local.image
  repository_arn       = module.cluster.repository_arn
  command              = ["lessonloop", "worker", "factory"]
  container_port       = local.factory_metrics_port
  cpu                  = var.factory.cpu
  memory               = var.factory.memory
  min_count            = var.factory.min_count
  max_count            = var.factory.max_count
  autoscaling          = { metric = "queue_depth", queue = "generation_jobs", target = var.factory.jobs_per_task }
  stop_timeout_seconds = 120
  subnet_ids           = module.network.app_subnet_ids
  security_group_id    = module.network.security_group_ids["worker"]
  kms_key_arn          = module.kms.key_arn
  log_retention_days   = var.log_retention_days
  task_policy_json     = data.aws_iam_policy_document.publish_metrics.json

  environment = merge(
    {
      AWS_REGION                  = var.aws_region
      LESSONLOOP_PROGRESS_BACKEND = var.progress_backend
      LESSONLOOP_PROGRESS_TABLE   = module.progress_table.name
    },
    local.worker_metrics_env,
    var.openai_base_url == "" ? {} : { OPENAI_BASE_URL = var.openai_base_url },
    var.anthropic_base_url == "" ? {} : { ANTHROPIC_BASE_URL = var.anthropic_base_url },
  )

  secrets = merge(
    {
      DATABASE_URL               = module.secrets.arns["DATABASE_URL"]
      REDIS_URL                  = module.secrets.arns["REDIS_URL"]
      LESSONLOOP_QUEUE_REDIS_URL = module.secrets.arns["LESSONLOOP_QUEUE_REDIS_URL"]
    },
    { for name in var.llm_api_keys : name => module.secrets.arns[name] },
  )
}

module "curator" {
  source = "./modules/service"

  name                 = "${local.name}-curator"
  aws_region           = var.aws_region
  cluster_arn          = module.cluster.cluster_arn
  cluster_name         = module.cluster.cluster_name
  image                = local.image
  repository_arn       = module.cluster.repository_arn
  command              = ["lessonloop", "worker", "curator"]
  container_port       = local.curator_metrics_port
  cpu                  = var.curator.cpu
  memory               = var.curator.memory
  min_count            = var.curator.min_count
  max_count            = var.curator.max_count
  autoscaling          = { metric = "queue_depth", queue = "refill_check", target = var.curator.jobs_per_task }
  stop_timeout_seconds = 120
  subnet_ids           = module.network.app_subnet_ids
  security_group_id    = module.network.security_group_ids["worker"]
  kms_key_arn          = module.kms.key_arn
  log_retention_days   = var.log_retention_days
  task_policy_json     = data.aws_iam_policy_document.curator_task.json

  environment = merge(
    {
      AWS_REGION                  = var.aws_region
      LESSONLOOP_PROGRESS_BACKEND = var.progress_backend
      LESSONLOOP_PROGRESS_TABLE   = module.progress_table.name
    },
    local.worker_metrics_env,
  )

  secrets = {
    DATABASE_URL               = module.secrets.arns["DATABASE_URL"]
    REDIS_URL                  = module.secrets.arns["REDIS_URL"]
    LESSONLOOP_QUEUE_REDIS_URL = module.secrets.arns["LESSONLOOP_QUEUE_REDIS_URL"]
  }
}
