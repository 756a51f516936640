#!/usr/bin/env bash
# k8s-diagnose.sh NAMESPACE [RELEASE] — what a failed install or upgrade left behind, for the
# job log: the release's objects and history, recent events, the migration Job's log (Helm 4
# prints it for a failed hook too; a Job that timed out or was rolled back is read here) and
# the pods' logs. Never fails: it runs after a failure, to explain it.
set -uo pipefail

NS="${1:?usage: k8s-diagnose.sh NAMESPACE [RELEASE]}"
RELEASE="${2:-keel}"

section() { printf '\n=== %s\n' "$*"; }

section "helm history $RELEASE"
helm history "$RELEASE" -n "$NS" --max 5
section "objects"
kubectl get deploy,rs,pods,jobs,svc -n "$NS" -o wide
section "events (newest last)"
kubectl get events -n "$NS" --sort-by=.lastTimestamp | tail -n 40
section "migration Job $RELEASE-migrate"
kubectl describe job -n "$NS" "$RELEASE-migrate" | tail -n 20
kubectl logs -n "$NS" "job/$RELEASE-migrate" --all-containers --tail=200
section "pods that are not ready"
kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$RELEASE" \
	-o jsonpath='{range .items[?(@.status.containerStatuses[0].ready!=true)]}{.metadata.name}{"\n"}{end}' |
	while read -r pod; do
		[ -n "$pod" ] || continue
		section "pod $pod"
		kubectl describe pod -n "$NS" "$pod" | tail -n 25
		kubectl logs -n "$NS" "$pod" --all-containers --tail=50
		kubectl logs -n "$NS" "$pod" --all-containers --tail=50 --previous 2>/dev/null
	done
exit 0
