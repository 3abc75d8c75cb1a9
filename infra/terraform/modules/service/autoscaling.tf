# Every service scales: the web services on CPU, the workers on their queue's backlog per task
# (Lessonloop/QueueDepth, published by the app, over ECS/ContainerInsights RunningTaskCount).

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "this" {
  name               = "${var.name}-${var.autoscaling.metric}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    dynamic "predefined_metric_specification" {
      for_each = var.autoscaling.metric == "cpu" ? [1] : []

      content {
        predefined_metric_type = "ECSServiceAverageCPUUtilization"
      }
    }

    dynamic "customized_metric_specification" {
      for_each = var.autoscaling.metric == "queue_depth" ? [1] : []

      content {
        metrics {
          id          = "depth"
          label       = "Jobs waiting in ${var.autoscaling.queue}"
          return_data = false

          metric_stat {
            stat = "Average"

            metric {
              namespace   = "Lessonloop"
              metric_name = "QueueDepth"

              dimensions {
                name  = "Queue"
                value = var.autoscaling.queue
              }
            }
          }
        }

        metrics {
          id          = "tasks"
          label       = "Running tasks"
          return_data = false

          metric_stat {
            stat = "Average"

            metric {
              namespace   = "ECS/ContainerInsights"
              metric_name = "RunningTaskCount"

              dimensions {
                name  = "ClusterName"
                value = var.cluster_name
              }

              dimensions {
                name  = "ServiceName"
                value = aws_ecs_service.this.name
              }
            }
          }
        }

        metrics {
          id          = "backlog_per_task"
          label       = "Jobs waiting per running task"
          expression  = "depth / tasks" # min_count >= 1 keeps tasks above zero
          return_data = true
        }
      }
    }
  }
}
