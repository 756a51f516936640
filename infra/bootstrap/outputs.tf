output "state_bucket" {
  description = "State bucket name (backend \"bucket\")."
  value       = aws_s3_bucket.state.id
}

output "state_bucket_arn" {
  description = "State bucket ARN."
  value       = aws_s3_bucket.state.arn
}

output "state_kms_key_arn" {
  description = "KMS key encrypting state objects (backend \"kms_key_id\")."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Contents for infra/envs/<env>/backend.hcl."
  value       = <<-EOT
    bucket     = "${aws_s3_bucket.state.id}"
    region     = "${var.aws_region}"
    kms_key_id = "${aws_kms_key.state.arn}"
  EOT
}
