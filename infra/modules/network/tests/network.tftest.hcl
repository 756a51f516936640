mock_provider "aws" {
  override_during = plan

  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/vpc/keel/flow-logs" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-vpc-flow-logs" }
  }
}

variables {
  name               = "keel-staging"
  availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  cluster_name       = "keel-staging"
  tags               = { project = "keel" }
}

run "staging_single_nat" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "Staging uses exactly one NAT gateway."
  }
  assert {
    condition     = length(aws_eip.nat) == 1 && length(aws_route.private_nat) == 3
    error_message = "One NAT EIP; every private route table still gets a default route."
  }
}

run "production_nat_per_az" {
  command = plan

  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "Production has one NAT gateway per AZ."
  }
  assert {
    condition     = length(aws_eip.nat) == 3 && length(aws_route_table.private) == 3
    error_message = "One EIP per NAT gateway and one private route table per AZ."
  }
}

run "three_azs_public_private" {
  command = plan

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "Three public and three private subnets."
  }
  assert {
    condition     = length(distinct([for s in aws_subnet.private : s.availability_zone])) == 3
    error_message = "Private subnets span three AZs."
  }
  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch]) && alltrue([for s in aws_subnet.private : !s.map_public_ip_on_launch])
    error_message = "No subnet auto-assigns public IPs."
  }
  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1"])
    error_message = "Private subnets carry the internal-elb discovery tag."
  }
  assert {
    condition     = aws_vpc.this.tags["project"] == "keel"
    error_message = "Tags must be applied."
  }
}

run "flow_logs_and_default_sg" {
  command = plan

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL"
    error_message = "Flow logs must capture all traffic."
  }
  assert {
    condition     = module.flow_logs.security_posture.log_group_kms_key_id != null && module.flow_logs.security_posture.retention_in_days >= 365
    error_message = "Flow logs are KMS encrypted and kept a year."
  }
  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group has no rules."
  }
}

run "rejects_unavailable_zone" {
  command = plan

  variables {
    availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1z"]
  }

  expect_failures = [aws_vpc.this]
}

run "rejects_duplicate_zones" {
  command = plan

  variables {
    availability_zones = ["eu-west-1a", "eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.availability_zones]
}

run "rejects_tiny_vpc" {
  command = plan

  variables {
    cidr_block = "10.0.0.0/24"
  }

  expect_failures = [var.cidr_block]
}
