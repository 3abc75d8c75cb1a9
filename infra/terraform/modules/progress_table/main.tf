# Durable learner progress when LESSONLOOP_PROGRESS_BACKEND=dynamodb: one item per answer event,
# partition key learner_id, sort key seq (a sortable string the app assigns, so a learner's
# history reads in order with one Query). On-demand capacity, point-in-time recovery, and
# server-side encryption with the environment's customer-managed key.

resource "aws_dynamodb_table" "progress" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "learner_id"
  range_key    = "seq"

  attribute {
    name = "learner_id"
    type = "S"
  }

  attribute {
    name = "seq"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
}
