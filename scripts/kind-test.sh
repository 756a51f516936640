#!/usr/bin/env bash
# kind-test.sh IMAGE CLUSTER — the chart on a real Kubernetes cluster, as a deploy would run it.
# CI's e2e-kind job (.github/workflows/ci.yml) runs it on a kind cluster; it needs docker, kind,
# kubectl, helm 4 and openssl, and a registry the cluster can pull postgres:17-alpine from.
#
#   1. kind load IMAGE; PostgreSQL 17 (the official image) as a Deployment + Service.
#   2. Two Secrets as an operator makes them: the pods' (the service role's URL, the signing
#      key, the webhook encryption key) and the migration Job's (the schema owner's URL).
#   3. helm upgrade --install with helm/keel/ci/kind-values.yaml, --rollback-on-failure
#      --wait=watcher; helm test.
#   4. Through the Service (kubectl port-forward): ready; register and log in a member; an admin
#      made with `keel users create-admin` in a pod; a product; an order; the stock reserved.
#   5. helm upgrade with a changed config and a new password for the service role in its
#      Secret: only if the pre-upgrade migration Job ran does the role get that password, and
#      only if the rollout replaced every pod do the pods use it. Then the member logs in again
#      (data kept), every pod belongs to the new ReplicaSet, and the Job ran twice.
# kind-test.sh --diagnose   prints pods, events, the migration Job's and the pods' logs
#                           (scripts/k8s-diagnose.sh).
set -euo pipefail

NS="${KIND_TEST_NAMESPACE:-keel}"
RELEASE=keel
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/keel"
VALUES="$CHART/ci/kind-values.yaml"
PG_IMAGE="${KIND_TEST_PG_IMAGE:-postgres:17-alpine}"
TIMEOUT=5m

step() { printf '\nkind-test: %s\n' "$*" >&2; }
fail() {
	printf 'kind-test: FAILED: %s\n' "$*" >&2
	exit 1
}

diagnose() { "$ROOT/scripts/k8s-diagnose.sh" "$NS" "$RELEASE"; }

if [ "${1:-}" = --diagnose ]; then
	diagnose
	exit 0
fi

IMAGE="${1:?usage: kind-test.sh IMAGE CLUSTER | --diagnose}"
CLUSTER="${2:?usage: kind-test.sh IMAGE CLUSTER | --diagnose}"
REPOSITORY="${IMAGE%:*}"
TAG="${IMAGE##*:}"
for tool in docker kind kubectl helm openssl curl python3; do
	command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done
[[ "$(helm version --short)" == v4.* ]] || fail "helm 4 is needed (--rollback-on-failure, --wait=watcher)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/kind-test.XXXXXX")"
PF_PID=""
cleanup() {
	if [ -n "$PF_PID" ]; then kill "$PF_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# `field KEY < json` prints one top-level field of a JSON document.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

step "kind load docker-image $IMAGE"
kind load docker-image "$IMAGE" --name "$CLUSTER"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -

step "PostgreSQL ($PG_IMAGE) in the cluster"
OWNER_PASSWORD="owner-$(openssl rand -hex 12)"
kubectl create secret generic postgres -n "$NS" --from-literal=POSTGRES_PASSWORD="$OWNER_PASSWORD" \
	--dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$NS" -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: postgres
spec:
  replicas: 1
  selector:
    matchLabels: {app: postgres}
  template:
    metadata:
      labels: {app: postgres}
    spec:
      containers:
        - name: postgres
          image: $PG_IMAGE
          env:
            - {name: POSTGRES_USER, value: keel}
            - {name: POSTGRES_DB, value: keel}
            - name: POSTGRES_PASSWORD
              valueFrom: {secretKeyRef: {name: postgres, key: POSTGRES_PASSWORD}}
          ports: [{containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -U, keel, -d, keel]}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: postgres
spec:
  selector: {app: postgres}
  ports: [{port: 5432, targetPort: 5432}]
EOF
kubectl rollout status -n "$NS" deploy/postgres --timeout=180s

# The Secrets an operator creates before the install (helm/keel/README.md): the pods connect as
# keel_app, whose role and grants `keel migrate` makes, connected as the owner.
write_secrets() {
	local app_password="$1"
	[ -f "$TMP/signing.pem" ] || openssl genpkey -algorithm ed25519 -out "$TMP/signing.pem" 2>/dev/null
	[ -f "$TMP/webhook.key" ] || openssl rand -base64 32 | tr -d '\n' >"$TMP/webhook.key"
	kubectl create secret generic keel-secrets -n "$NS" \
		--from-literal=APP__DATABASE__URL="postgres://keel_app:$app_password@postgres.$NS.svc:5432/keel" \
		--from-file=APP__AUTH__SIGNING_KEY="$TMP/signing.pem" \
		--from-file=APP__WEBHOOKS__ENCRYPTION_KEYS__K1="$TMP/webhook.key" \
		--dry-run=client -o yaml | kubectl apply -f -
	kubectl create secret generic keel-migration -n "$NS" \
		--from-literal=APP__DATABASE__MIGRATION_URL="postgres://keel:$OWNER_PASSWORD@postgres.$NS.svc:5432/keel" \
		--dry-run=client -o yaml | kubectl apply -f -
}
write_secrets "app-$(openssl rand -hex 12)"

# As deploy.yml runs it: Helm 4 rolls back a failed upgrade itself, and waits with kstatus.
helm_deploy() {
	helm upgrade --install "$RELEASE" "$CHART" -n "$NS" -f "$VALUES" \
		--set image.repository="$REPOSITORY" --set image.tag="$TAG" \
		--rollback-on-failure --wait=watcher --timeout "$TIMEOUT" "$@"
}

step "helm upgrade --install (first install: the pre-install migration Job, then the pods)"
helm_deploy || {
	diagnose
	fail "helm install"
}
step "helm test"
helm test "$RELEASE" -n "$NS" --logs --timeout 2m || fail "helm test"

# The Service, as a client in the cluster sees it.
start_port_forward() {
	if [ -n "$PF_PID" ]; then kill "$PF_PID" 2>/dev/null || true; fi
	local port
	port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	kubectl port-forward -n "$NS" "svc/$RELEASE" "$port:80" >"$TMP/port-forward.log" 2>&1 &
	PF_PID=$!
	BASE="http://127.0.0.1:$port"
	for _ in $(seq 1 60); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ] && return 0
		sleep 1
	done
	cat "$TMP/port-forward.log" >&2
	fail "$BASE/health/ready (the Service through port-forward) did not answer 200"
}

# shellcheck source=scripts/lib/http.sh
. "$ROOT/scripts/lib/http.sh"

start_port_forward
step "smoke flow through svc/$RELEASE at $BASE"
MEMBER_EMAIL="member@e2e.example"
MEMBER_PASSWORD="e2e-member-$(openssl rand -hex 8)"
call POST /api/v1/auth/register 201 "" \
	"{\"email\":\"$MEMBER_EMAIL\",\"password\":\"$MEMBER_PASSWORD\",\"display_name\":\"E2E\"}" >/dev/null
MEMBER_TOKEN="$(call POST /api/v1/auth/login 200 "" \
	"{\"email\":\"$MEMBER_EMAIL\",\"password\":\"$MEMBER_PASSWORD\"}" | field access_token)"
ADMIN_EMAIL="admin@e2e.example"
ADMIN_PASSWORD="e2e-admin-$(openssl rand -hex 8)"
printf '%s\n' "$ADMIN_PASSWORD" |
	kubectl exec -i -n "$NS" "deploy/$RELEASE" -- keel users create-admin --email "$ADMIN_EMAIL" >/dev/null ||
	fail "keel users create-admin in a pod"
ADMIN_TOKEN="$(call POST /api/v1/auth/login 200 "" \
	"{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | field access_token)"
[ "$(call GET /api/v1/users/me 200 "$MEMBER_TOKEN" | field role)" = member ] || fail "the member is not a member"
step "registered and logged in a member and an admin"
# example-domain:begin (make remove-example deletes this block with the catalog and orders)
PRODUCT_ID="$(call POST /api/v1/products 201 "$ADMIN_TOKEN" \
	'{"sku":"E2E-1","name":"End-to-end bolt","description":"","price_cents":250,"currency":"EUR","stock":3}' | field id)"
ORDER="$(call POST /api/v1/orders 201 "$MEMBER_TOKEN" \
	"{\"items\":[{\"product_id\":\"$PRODUCT_ID\",\"quantity\":2}]}")"
[ "$(field status <<<"$ORDER")" = placed ] || fail "the order is not placed: $ORDER"
[ "$(call GET "/api/v1/products/$PRODUCT_ID" 200 | field stock)" = 1 ] || fail "stock was not reserved"
step "created a product and placed an order"
# example-domain:end

step "helm upgrade: a changed config and a new password for the service role"
OLD_RS="$(kubectl get rs -n "$NS" -l app.kubernetes.io/instance="$RELEASE",app.kubernetes.io/component=api \
	-o jsonpath='{.items[*].metadata.name}')"
write_secrets "app2-$(openssl rand -hex 12)"
helm_deploy --set-string config.APP__AUTH__PASSWORD_HASH_CONCURRENCY=2 || {
	diagnose
	fail "helm upgrade"
}
[ "$(helm status "$RELEASE" -n "$NS" -o json | field version)" = 2 ] || fail "the release is not at revision 2"
kubectl rollout status -n "$NS" "deploy/$RELEASE" --timeout=120s
NEW_HASH="$(kubectl get rs -n "$NS" -l app.kubernetes.io/instance="$RELEASE",app.kubernetes.io/component=api \
	--sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.labels.pod-template-hash}')"
for rs in $OLD_RS; do
	[[ "$rs" != *"-$NEW_HASH" ]] || fail "the config change started no new ReplicaSet"
done
stale="$(kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$RELEASE",app.kubernetes.io/component=api \
	-o jsonpath='{range .items[*]}{.metadata.labels.pod-template-hash}{"\n"}{end}' | grep -vcx "$NEW_HASH" || true)"
[ "$stale" = 0 ] || fail "$stale API pods are not from the new ReplicaSet"
[ "$(kubectl get cm -n "$NS" -l app.kubernetes.io/instance="$RELEASE" -o json |
	python3 -c 'import json, sys; print(sorted({i["data"].get("APP__AUTH__PASSWORD_HASH_CONCURRENCY", "") for i in json.load(sys.stdin)["items"]} - {""}))')" = "['2']" ] ||
	fail "the ConfigMap does not carry the changed setting"
jobs_run="$(kubectl get events -n "$NS" --field-selector involvedObject.kind=Job,involvedObject.name="$RELEASE-migrate",reason=SuccessfulCreate -o name | wc -l)"
[ "$jobs_run" -ge 2 ] || fail "the migration Job ran $jobs_run time(s), expected once per install and upgrade"
step "revision 2 rolled out: every API pod in the new ReplicaSet, the migration Job ran $jobs_run times"

start_port_forward
call POST /api/v1/auth/login 200 "" "{\"email\":\"$MEMBER_EMAIL\",\"password\":\"$MEMBER_PASSWORD\"}" >/dev/null
[ "$(call GET /api/v1/users/me 200 "$ADMIN_TOKEN" | field role)" = admin ] || fail "the admin is not an admin after the upgrade"
step "after the upgrade: ready with the new role password, the member logs in, the admin's token still verifies"
helm test "$RELEASE" -n "$NS" --logs --timeout 2m || fail "helm test after the upgrade"
echo "kind-test: passed"
