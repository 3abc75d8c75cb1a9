output "topic_arn" {
  description = "SNS topic every alarm notifies (subscribe a pager or chat integration here)."
  value       = aws_sns_topic.alarms.arn
}
