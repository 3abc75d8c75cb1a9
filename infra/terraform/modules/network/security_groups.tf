# Who may talk to whom. The ALB is the only thing reachable from the internet (443, and 80 that
# only redirects to 443); everything else admits only the security groups named in its rules.
#
#   internet --443/80--> alb --app_port--> web (API, portal)
#   web, worker --5432--> postgres      web, worker --6379--> redis
#   web, worker --443--> VPC endpoints, and via NAT to LLM providers / an IdP's JWKS

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5: attached in another module (checkov's graph stops at module outputs); tests/infra checks every group is used.
  name        = "${var.name}-alb"
  description = "Public load balancer: HTTPS in, app_port out to the web tasks"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "web" {
  #checkov:skip=CKV2_AWS_5: attached in another module (checkov's graph stops at module outputs); tests/infra checks every group is used.
  name        = "${var.name}-web"
  description = "Lesson API and review portal tasks"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "worker" {
  #checkov:skip=CKV2_AWS_5: attached in another module (checkov's graph stops at module outputs); tests/infra checks every group is used.
  name        = "${var.name}-worker"
  description = "Factory and curator worker tasks (no inbound)"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "postgres" {
  #checkov:skip=CKV2_AWS_5: attached in another module (checkov's graph stops at module outputs); tests/infra checks every group is used.
  name        = "${var.name}-postgres"
  description = "RDS PostgreSQL, from the app tasks only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "redis" {
  #checkov:skip=CKV2_AWS_5: attached in another module (checkov's graph stops at module outputs); tests/infra checks every group is used.
  name        = "${var.name}-redis"
  description = "ElastiCache playlist and queue Redis, from the app tasks only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "Interface VPC endpoints, from the app tasks only"
  vpc_id      = aws_vpc.this.id
}

locals {
  app_groups = {
    web    = aws_security_group.web.id
    worker = aws_security_group.worker.id
  }
}

# --- the ALB ----------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_public" {
  #checkov:skip=CKV_AWS_260: port 80 is open on purpose; its listener only answers 301 to HTTPS.
  for_each = { https = 443, http = 80 }

  security_group_id = aws_security_group.alb.id
  description       = "Internet to the ALB (${each.key}; http only redirects to https)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_web" {
  security_group_id            = aws_security_group.alb.id
  description                  = "ALB to the API and portal tasks"
  referenced_security_group_id = aws_security_group.web.id
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
}

# --- app tasks --------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "ALB to the API and portal tasks"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
}

resource "aws_vpc_security_group_egress_rule" "app_to_postgres" {
  for_each = local.app_groups

  security_group_id            = each.value
  description                  = "${each.key} tasks to PostgreSQL"
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "app_to_redis" {
  for_each = local.app_groups

  security_group_id            = each.value
  description                  = "${each.key} tasks to Redis"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_egress_rule" "app_https" {
  for_each = local.app_groups

  security_group_id = each.value
  description       = "${each.key} tasks to HTTPS: VPC endpoints, LLM providers and JWKS through NAT"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- data stores and endpoints: inbound from the app tasks only ---------------------------------

resource "aws_vpc_security_group_ingress_rule" "postgres_from_app" {
  for_each = local.app_groups

  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_app" {
  for_each = local.app_groups

  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_app" {
  for_each = local.app_groups

  security_group_id            = aws_security_group.endpoints.id
  description                  = "AWS API endpoints from ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}
