data "aws_caller_identity" "current" {}

locals {
  assume_by_ecs_tasks = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
      }
    }]
  })
}

# --- execution role: ECS starting the task --------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS pulls the image, writes logs and injects the secrets of ${var.name}"
  assume_role_policy = local.assume_by_ecs_tasks
}

resource "aws_iam_role_policy" "execution" {
  name = "start-task"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "EcrLogin" # GetAuthorizationToken has no resource-level permissions
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = var.repository_arn
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:*"
      },
      {
        Sid      = "ReadOwnSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = sort(values(var.secrets))
      },
      {
        Sid      = "DecryptSecretsAndImage"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = var.kms_key_arn
        Condition = {
          StringEquals = {
            "kms:ViaService" = ["secretsmanager.${var.aws_region}.amazonaws.com", "ecr.${var.aws_region}.amazonaws.com"]
          }
        }
      },
    ]
  })
}

# --- task role: the app itself ----------------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "What the ${var.name} app may call in AWS"
  assume_role_policy = local.assume_by_ecs_tasks
}

resource "aws_iam_role_policy" "task" {
  name   = "app"
  role   = aws_iam_role.task.id
  policy = var.task_policy_json
}
