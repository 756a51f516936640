output "kms_key_arn" {
  description = "KMS key encrypting the log group (callers may use it for more, e.g. EKS secrets)."
  value       = aws_kms_key.this.arn
}

output "log_group_name" {
  description = "Log group name."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "Log group ARN."
  value       = aws_cloudwatch_log_group.this.arn
}

output "security_posture" {
  description = "Security-relevant settings of the key and the log group (for tests and reviews)."
  value = {
    key_rotation_enabled = aws_kms_key.this.enable_key_rotation
    log_group_kms_key_id = aws_cloudwatch_log_group.this.kms_key_id
    retention_in_days    = aws_cloudwatch_log_group.this.retention_in_days
  }
}
