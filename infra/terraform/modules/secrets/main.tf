# Every credential the services read, one Secrets Manager secret per environment variable, so an
# ECS task definition maps a variable straight to a secret ARN and each service's execution role
# can be scoped to exactly the secrets it injects.
#
# Terraform writes the values it generates (database and Redis URLs, the token and portal session
# secrets). The LLM
# keys (var.operator_filled) are created empty and filled by an operator (docs/deploy.md), so they
# never enter the Terraform state.

locals {
  generated_names = toset(["DATABASE_URL", "REDIS_URL", "LESSONLOOP_QUEUE_REDIS_URL", "LESSONLOOP_TOKEN_SECRET",
  "LESSONLOOP_PORTAL_SESSION_SECRET"])
  operator_names = toset(var.operator_filled)

  generated_values = {
    DATABASE_URL                     = var.database_url
    REDIS_URL                        = var.redis_url
    LESSONLOOP_QUEUE_REDIS_URL       = var.queue_redis_url
    LESSONLOOP_TOKEN_SECRET          = random_password.token_secret.result
    LESSONLOOP_PORTAL_SESSION_SECRET = random_password.portal_session_secret.result
  }

  descriptions = {
    DATABASE_URL                     = "PostgreSQL URL with credentials"
    REDIS_URL                        = "Playlist Redis cluster URL with auth token"
    LESSONLOOP_QUEUE_REDIS_URL       = "Queue and breaker-state Redis URL with auth token"
    LESSONLOOP_TOKEN_SECRET          = "HS256 signing secret of bearer tokens"
    LESSONLOOP_PORTAL_SESSION_SECRET = "Secret of the portal's session cookies and CSRF tokens"
  }
}

resource "random_password" "token_secret" {
  length  = 64
  special = false
}

resource "random_password" "portal_session_secret" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57: no rotation Lambda; generated values rotate with `terraform apply -replace` (docs/deploy.md), LLM keys by the operator.
  for_each = setunion(local.generated_names, local.operator_names)

  name                    = "${var.name}/${each.key}"
  description             = lookup(local.descriptions, each.key, "${each.key} (filled by an operator)")
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = local.generated_names

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = local.generated_values[each.key]
}
