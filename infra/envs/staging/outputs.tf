# Passed through under the names infra/README.md and the deploy workflow use;
# descriptions in modules/stack/outputs.tf.
output "aws_region" { value = module.stack.aws_region }
output "cluster_name" { value = module.stack.cluster_name }
output "ecr_repository_url" { value = module.stack.ecr_repository_url }
output "deploy_role_arn" { value = module.stack.deploy_role_arn }
output "plan_role_arn" { value = module.stack.plan_role_arn }
output "github_plan_environments" { value = module.stack.github_plan_environments }
output "apply_role_arn" { value = module.stack.apply_role_arn }
output "github_apply_environments" { value = module.stack.github_apply_environments }
output "release_role_arn" { value = module.stack.release_role_arn }
output "github_release_environments" { value = module.stack.github_release_environments }
output "db_endpoint" { value = module.stack.db_endpoint }
output "db_name" { value = module.stack.db_name }
output "db_secret_arn" { value = module.stack.db_secret_arn }
output "db_app_secret_arn" { value = module.stack.db_app_secret_arn }
output "db_app_username" { value = module.stack.db_app_username }
output "service_role_arn" { value = module.stack.service_role_arn }
output "service_account" { value = module.stack.service_account }
output "nat_gateway_count" { value = module.stack.nat_gateway_count }
