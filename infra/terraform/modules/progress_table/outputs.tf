output "name" {
  description = "Name of the progress table."
  value       = aws_dynamodb_table.progress.name
}

output "arn" {
  description = "ARN of the progress table."
  value       = aws_dynamodb_table.progress.arn
}
