# The modules moved into modules/stack. These blocks let a state written before that keep its
# resources: terraform plan reports "has moved to" instead of destroy/create. Drop them once
# every state has been applied with them.

moved {
  from = module.network
  to   = module.stack.module.network
}

moved {
  from = module.ecr
  to   = module.stack.module.ecr
}

moved {
  from = module.eks
  to   = module.stack.module.eks
}

moved {
  from = module.rds
  to   = module.stack.module.rds
}

moved {
  from = module.github_oidc
  to   = module.stack.module.github_oidc
}

moved {
  from = module.service_identity
  to   = module.stack.module.service_identity
}
