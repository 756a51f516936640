#!/usr/bin/env bash
# terraform-ci.sh plan|apply ENVIRONMENT — infra.yml's Terraform run in infra/envs/ENVIRONMENT.
#
# The per-deployment files that git never holds (infra/.gitignore) come from the environment:
# TF_BACKEND is backend.hcl (terraform -chdir=infra/bootstrap output -raw backend_config) and
# TF_VARS is terraform.tfvars, both repository variables (docs/ci-cd.md). AWS credentials are
# already in the environment (configure-aws-credentials: the plan role, or the apply role).
#   plan   terraform plan; the plan goes to the job summary ($GITHUB_STEP_SUMMARY when set)
#   apply  terraform plan -out, then terraform apply of exactly that plan
set -euo pipefail

ACTION="${1:?usage: terraform-ci.sh plan|apply ENVIRONMENT}"
ENVIRONMENT="${2:?usage: terraform-ci.sh plan|apply ENVIRONMENT}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/infra/envs/$ENVIRONMENT"
SUMMARY="${GITHUB_STEP_SUMMARY:-/dev/null}"

die() {
	printf 'terraform-ci: %s\n' "$*" >&2
	exit 1
}
case "$ACTION" in plan | apply) ;; *) die "the action is plan or apply, not ${ACTION@Q}" ;; esac
[[ "$ENVIRONMENT" =~ ^[a-z0-9-]+$ && -d "$DIR" ]] || die "no environment root infra/envs/$ENVIRONMENT"
[ -n "${TF_BACKEND:-}" ] || die "TF_BACKEND (the backend.hcl of $ENVIRONMENT) is empty: set the repository variable (docs/ci-cd.md)"
[ -n "${TF_VARS:-}" ] || die "TF_VARS (the terraform.tfvars of $ENVIRONMENT) is empty: set the repository variable (docs/ci-cd.md)"

# On a workstation these files are the operator's own: never overwrite them outside CI.
if [ -z "${CI:-}" ] && { [ -e "$DIR/backend.hcl" ] || [ -e "$DIR/terraform.tfvars" ]; }; then
	die "infra/envs/$ENVIRONMENT already has backend.hcl or terraform.tfvars; this script is for CI (set CI=true to overwrite them)"
fi
WORK="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/terraform-ci.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
printf '%s\n' "$TF_BACKEND" >"$DIR/backend.hcl"
printf '%s\n' "$TF_VARS" >"$DIR/terraform.tfvars"
export TF_IN_AUTOMATION=1 TF_INPUT=0

terraform -chdir="$DIR" init -backend-config=backend.hcl -no-color >/dev/null
rc=0
terraform -chdir="$DIR" plan -lock-timeout=5m -no-color -detailed-exitcode -out="$WORK/tfplan" >"$WORK/plan.txt" 2>&1 || rc=$?
cat "$WORK/plan.txt"
case "$rc" in
0) changes="no changes" ;;
2) changes="changes" ;;
*) changes="failed (exit $rc)" ;;
esac
{
	echo "### terraform plan: $ENVIRONMENT ($changes)"
	echo
	echo '<details><summary>plan</summary>'
	echo
	echo '```'
	# The summary holds 1 MiB per step: keep the end, where the resource summary is.
	tail -c 60000 "$WORK/plan.txt"
	echo '```'
	echo '</details>'
} >>"$SUMMARY"
[ "$rc" = 0 ] || [ "$rc" = 2 ] || die "terraform plan failed"

if [ "$ACTION" = apply ]; then
	if [ "$rc" = 0 ]; then
		echo "terraform-ci: $ENVIRONMENT has no changes to apply"
		exit 0
	fi
	terraform -chdir="$DIR" apply -no-color -lock-timeout=5m "$WORK/tfplan"
	echo "### terraform apply: $ENVIRONMENT applied" >>"$SUMMARY"
fi
