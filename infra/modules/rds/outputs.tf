output "endpoint" {
  description = "Database host name."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Database port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Initial database name."
  value       = aws_db_instance.this.db_name
}

output "master_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the RDS-managed master credentials."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "app_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the service role's credentials, JSON {username, password}."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_username" {
  description = "Base name of the service's PostgreSQL roles: the app secret names it or the same with _b."
  value       = var.app_username
}

output "security_group_id" {
  description = "Security group attached to the database."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "KMS key protecting storage and the master secret."
  value       = local.kms_key_arn
}

output "sizing" {
  description = "Instance class and storage of the database (for tests and reviews)."
  value = {
    instance_class    = aws_db_instance.this.instance_class
    allocated_storage = aws_db_instance.this.allocated_storage
  }
}

output "security_posture" {
  description = "Security-relevant settings of the instance (for tests and reviews)."
  value = {
    publicly_accessible         = aws_db_instance.this.publicly_accessible
    storage_encrypted           = aws_db_instance.this.storage_encrypted
    kms_key_id                  = aws_db_instance.this.kms_key_id
    manage_master_user_password = aws_db_instance.this.manage_master_user_password
    deletion_protection         = aws_db_instance.this.deletion_protection
    multi_az                    = aws_db_instance.this.multi_az
    skip_final_snapshot         = aws_db_instance.this.skip_final_snapshot
    backup_retention_period     = aws_db_instance.this.backup_retention_period
    force_ssl                   = one([for p in aws_db_parameter_group.this.parameter : p.value if p.name == "rds.force_ssl"])
    app_secret_kms_key_id       = aws_secretsmanager_secret.app.kms_key_id
  }
}
