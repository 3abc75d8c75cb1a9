# The only public entry point: an ALB with an HTTPS listener (TLS 1.2+; HTTP answers 301 to
# HTTPS), a WAF in front, and access logs in S3. Routing on the HTTPS listener:
#   Host = portal_host_name                       -> portal service
#   Host = api_host_name, POST /v1/courses/*/lessons -> API service through its own target group,
#                                                    so that group's TargetResponseTime is lesson-start latency
#   Host = api_host_name                          -> API service
#   any other Host (scanners on the bare ALB name) -> 404

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_76: Log4j is blocked by KnownBadInputs (CKV_AWS_192 passes); this check also demands AnonymousIpList, which would block learners behind VPNs and school or corporate proxies.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [var.security_group_id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = aws_s3_bucket.access_logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      message_body = "{\"detail\": \"unknown host\"}"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

# TLS ends at the ALB; tasks sit in private subnets and admit only the ALB's security group.
resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378: TLS terminates at the ALB; ALB-to-task traffic stays in private subnets between two security groups.
  for_each = toset(["api", "lesson-start", "portal"])

  name                 = "${var.name}-${each.key}"
  port                 = var.app_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "portal" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["portal"].arn
  }

  condition {
    host_header {
      values = [var.portal_host_name]
    }
  }
}

resource "aws_lb_listener_rule" "lesson_start" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["lesson-start"].arn
  }

  condition {
    host_header {
      values = [var.api_host_name]
    }
  }

  condition {
    path_pattern {
      values = ["/v1/courses/*/lessons"]
    }
  }

  condition {
    http_request_method {
      values = ["POST"]
    }
  }
}

resource "aws_lb_listener_rule" "api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 30

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["api"].arn
  }

  condition {
    host_header {
      values = [var.api_host_name]
    }
  }
}
