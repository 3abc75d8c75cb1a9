# One Lessonloop role on ECS Fargate: task definition, service, its two IAM roles and its
# autoscaling. The same module runs the API, the portal and both worker kinds.
#
# Two roles, never shared:
#   execution role - used by ECS itself: pull the image, write the log group, read exactly the
#                    secrets in var.secrets (injected as environment variables at start)
#   task role      - used by the app: var.task_policy_json, nothing else

locals {
  log_group_name = "/lessonloop/${var.name}"

  container = {
    name                   = "app"
    image                  = var.image
    command                = var.command
    essential              = true
    readonlyRootFilesystem = true
    stopTimeout            = var.stop_timeout_seconds

    portMappings = var.container_port == null ? [] : [
      { containerPort = var.container_port, protocol = "tcp" }
    ]

    # Plain values only; anything secret goes through `secrets` (valueFrom = a secret ARN).
    environment = [for key in sort(keys(var.environment)) : { name = key, value = var.environment[key] }]
    secrets     = [for key in sort(keys(var.secrets)) : { name = key, valueFrom = var.secrets[key] }]

    # The root filesystem is read-only; /tmp is a task-local scratch volume.
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]

    linuxParameters = { initProcessEnabled = true }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "app"
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  # Registered only once ECS can act on it (pull, log, read secrets): a one-off task started
  # from this definition (docs/deploy.md, migrations) must not race its own permissions.
  depends_on = [aws_iam_role_policy.execution]
}

resource "aws_ecs_service" "this" {
  name             = var.name
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  desired_count    = var.min_count

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = length(var.target_group_arns) > 0 ? 60 : null
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = var.target_group_arns

    content {
      target_group_arn = load_balancer.value
      container_name   = local.container.name
      container_port   = var.container_port
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling after the first apply
  }
}
