# The alarms an operator is paged for, all sent to one encrypted SNS topic:
#   lesson start slow   - p99 ALB TargetResponseTime of the lesson-start target group
#   5xx rate            - (target 5xx + ALB 5xx) / requests
#   queue depth         - Lessonloop/QueueDepth{Queue} stays high (workers not keeping up)
#   breaker open        - Lessonloop/BreakerOpen: an LLM provider's circuit breaker is open
# The Lessonloop metrics are published by the app (docs/deploy.md, "Metrics the app publishes").

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  actions = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "lesson_start_p99" {
  alarm_name          = "${var.name}-lesson-start-p99"
  alarm_description   = "p99 of POST /v1/courses/{course}/lessons above ${var.lesson_start_p99_ms} ms for 3 of 5 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lesson_start_p99_ms / 1000
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = var.lesson_start_target_group_arn_suffix
  }
}

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than ${var.http_5xx_percent}% of requests answered 5xx (by the tasks or the ALB) for 3 of 5 minutes"
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.http_5xx_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "rate"
    label       = "5xx % of requests"
    expression  = "100 * (FILL(target, 0) + FILL(elb, 0)) / requests"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = {
      target   = "HTTPCode_Target_5XX_Count"
      elb      = "HTTPCode_ELB_5XX_Count"
      requests = "RequestCount"
    }

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        period      = 60
        stat        = "Sum"
        dimensions  = { LoadBalancer = var.alb_arn_suffix }
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  for_each = var.queue_depth_thresholds

  alarm_name          = "${var.name}-queue-depth-${each.key}"
  alarm_description   = "More than ${each.value} jobs waiting in ${each.key} for 15 minutes: workers at max_count or failing"
  namespace           = "Lessonloop"
  metric_name         = "QueueDepth"
  dimensions          = { Queue = each.key }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "breaker_open" {
  alarm_name          = "${var.name}-breaker-open"
  alarm_description   = "An LLM provider circuit breaker has been open for 5 minutes: generation runs on fallback tiers"
  namespace           = "Lessonloop"
  metric_name         = "BreakerOpen"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}
