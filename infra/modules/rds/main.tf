data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  production   = var.environment == "production"
  kms_key_arn  = coalesce(var.kms_key_arn, try(aws_kms_key.this[0].arn, null))
  major_family = "postgres${split(".", var.engine_version)[0]}"

  # A plain document, not an aws_iam_policy_document data source: `terraform test` (mocked
  # provider) and checkov then read the policy itself rather than a mocked or unresolved `.json`.
  kms_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # AWS's default key policy, and its only statement: the account owns the key, and IAM
      # policies in the account grant its use (the service's kms:Decrypt through Secrets
      # Manager, modules/workload-identity). No service principal: RDS and Secrets Manager use
      # the key through grants made with the permissions of whoever creates the instance and
      # the secrets. In a key policy, Resource "*" is this key alone.
      Sid       = "AccountAdmin"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = ["kms:*"]
      Resource  = "*"
    }]
  })
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "RDS ${var.name} storage, Performance Insights and master secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.kms_key_policy
  tags                    = var.tags
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets for ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-db"
  description = "PostgreSQL ${var.name}: ingress only from allowed security groups"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-db" })
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  # count, not for_each: the ids are usually unknown until apply (e.g. the EKS cluster security group).
  count = length(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from an allowed security group"
  referenced_security_group_id = var.allowed_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  tags                         = var.tags
}

resource "aws_db_parameter_group" "this" {
  name        = var.name
  family      = local.major_family
  description = "Keel ${var.name} PostgreSQL parameters"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_iam_role" "monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_161:No IAM database authentication: the pods log in with their own role's password from the db-app secret, the migration Job as the RDS-managed master, both over TLS that rds.force_ssl enforces; IAM auth would need the service to sign a 15-minute token (AWS SDK) for every new connection, and keel has no AWS SDK
  #checkov:skip=CKV2_AWS_30:The parameter group logs slow statements (log_min_duration_statement 500 ms) but sets no log_statement, which would log every statement with its parameters, user data included
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = var.database_name
  port           = 5432

  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = local.kms_key_arn

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = local.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false
  multi_az               = local.production

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = !local.production
  deletion_protection       = local.production
  skip_final_snapshot       = !local.production
  final_snapshot_identifier = local.production ? "${var.name}-final" : null

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = !local.production

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = local.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  tags = var.tags
}

# Credentials of the service's own login role, JSON {username, password}. The master user owns
# the schema and only `keel migrate` uses it: it creates the role this secret names from the URL
# built out of it (or sets its password) and grants it DML alone, so a compromised API pod cannot
# alter or drop the schema.
#
# Terraform creates the secret but never its value: scripts/db-app-password.sh fills it with a
# password from Secrets Manager's generator. Each run names the other of two roles, app_username
# and app_username_b, so a rotation never changes the password the running pods log in with. Terraform could write it itself without storing it
# (ephemeral aws_secretsmanager_random_password + secret_string_wo), but Terraform 1.11's mock
# providers refuse any ephemeral resource, which would leave this module and every environment
# without offline tests; and the data source instead would put the password in the state, which
# the pull-request plan role can read.
resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: scripts/db-app-password.sh rotates it, alternating between two roles, and the deploy that follows (keel migrate, then a rollout restart) moves the pods; a scheduled Lambda rotates without moving them, so its second run would change the password of the role they still use
  name        = "${var.name}/db-app"
  description = "PostgreSQL login of the service on ${var.name}, ${var.app_username} or ${var.app_username}_b: DML only, the master user owns the schema. Value set by scripts/db-app-password.sh."
  kms_key_id  = local.kms_key_arn
  # Staging is torn down and rebuilt: a pending deletion would block the name for the window.
  recovery_window_in_days = local.production ? 30 : 0
  # The script reads the base role name from here, so whoever sets the password cannot mistype it.
  tags = merge(var.tags, { "keel:db-username" = var.app_username })
}
