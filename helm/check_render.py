#!/usr/bin/env python3
"""Checks of one rendered release (`helm template` output) that no schema tool does here.

Usage: check_render.py RENDER.yaml CORE_OUT.yaml

1. Splits the stream: the Kubernetes built-in kinds go to CORE_OUT.yaml for kubernetes-validate;
   the CRD kinds (ExternalSecret, HTTPRoute) have no schema in kubernetes-validate.
2. Structural check of those CRD objects: a JSON schema, written for this chart, of the fields
   the chart sets, with the upstream field names, enums and patterns (external-secrets.io/v1,
   gateway.networking.k8s.io/v1) and no unknown fields. It is NOT the upstream CRD schema: it
   catches typos, wrong types and missing required fields in what the chart renders, not
   everything an API server with the CRDs installed would reject.
3. Wiring check: references between the rendered objects resolve (Service -> API pods and
   port, Ingress/HTTPRoute -> Service port, HPA/PDB -> Deployment, envFrom -> ConfigMap and the
   Secrets the ExternalSecrets create, hook order of ExternalSecret -> migration Job), and the
   database role split: the schema owner's Secret reaches the migration Job only, the Job reads
   every Secret the API reads, and a verify-full URL's sslrootcert is a file every reader
   mounts from a ConfigMap.

Prints one line per finding; exits 1 when there is any. Needs PyYAML and jsonschema (both are
dependencies of kubernetes-validate, so its venv has them).
"""

import os
import re
import sys

import jsonschema
import yaml

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
GO_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def closed(properties, required=()):
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
    }


METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS_LABEL},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}

EXTERNAL_SECRET = closed(
    {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "kind": {"const": "ExternalSecret"},
        "metadata": METADATA,
        "spec": closed(
            {
                "refreshInterval": {"type": "string", "pattern": GO_DURATION},
                "refreshPolicy": {"enum": ["CreatedOnce", "Periodic", "OnChange"]},
                "secretStoreRef": closed(
                    {
                        "kind": {"enum": ["SecretStore", "ClusterSecretStore"]},
                        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
                    },
                    ["name"],
                ),
                "target": closed(
                    {
                        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                        "immutable": {"type": "boolean"},
                        "template": closed(
                            {
                                "engineVersion": {"enum": ["v2"]},
                                "type": {"type": "string"},
                                "mergePolicy": {"enum": ["Replace", "Merge"]},
                                "metadata": closed({"labels": STRING_MAP, "annotations": STRING_MAP}),
                                "data": STRING_MAP,
                            }
                        ),
                    },
                    ["name"],
                ),
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        {
                            "secretKey": {
                                "type": "string",
                                "pattern": r"^[-._a-zA-Z0-9]+$",
                                "minLength": 1,
                                "maxLength": 253,
                            },
                            "remoteRef": closed(
                                {
                                    "key": {"type": "string", "minLength": 1},
                                    "property": {"type": "string"},
                                    "version": {"type": "string"},
                                    "conversionStrategy": {"enum": ["Default", "Unicode"]},
                                    "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
                                    "metadataPolicy": {"enum": ["None", "Fetch"]},
                                },
                                ["key"],
                            ),
                        },
                        ["secretKey", "remoteRef"],
                    ),
                },
            },
            ["secretStoreRef", "target", "data"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

PORT = {"type": "integer", "minimum": 1, "maximum": 65535}

HTTP_ROUTE = closed(
    {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": METADATA,
        "spec": closed(
            {
                "parentRefs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 32,
                    "items": closed(
                        {
                            "group": {"type": "string", "maxLength": 253},
                            "kind": {"type": "string", "minLength": 1, "maxLength": 63},
                            "namespace": {"type": "string", "pattern": DNS_LABEL},
                            "name": {"type": "string", "minLength": 1, "maxLength": 253},
                            "sectionName": {"type": "string", "pattern": DNS_SUBDOMAIN},
                            "port": PORT,
                        },
                        ["name"],
                    ),
                },
                "hostnames": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {"type": "string", "pattern": HOSTNAME, "maxLength": 253},
                },
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 16,
                    "items": closed(
                        {
                            "matches": {
                                "type": "array",
                                "maxItems": 64,
                                "items": closed(
                                    {
                                        "path": closed(
                                            {
                                                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                "value": {"type": "string", "pattern": "^/", "maxLength": 1024},
                                            }
                                        )
                                    }
                                ),
                            },
                            "backendRefs": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 16,
                                "items": closed(
                                    {
                                        "group": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "name": {"type": "string", "minLength": 1, "maxLength": 253},
                                        "namespace": {"type": "string", "pattern": DNS_LABEL},
                                        "port": PORT,
                                        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
                                    },
                                    # Required for kind Service (a CEL rule upstream).
                                    ["name", "port"],
                                ),
                            },
                        }
                    ),
                },
            },
            ["parentRefs", "rules"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

CRD_SCHEMAS = {
    ("external-secrets.io/v1", "ExternalSecret"): EXTERNAL_SECRET,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE,
}


def ref(doc):
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc):
    if doc["kind"] == "Pod":
        return doc["metadata"].get("labels", {})
    return doc["spec"]["template"]["metadata"].get("labels", {})


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def hook_events(doc):
    raw = doc["metadata"].get("annotations", {}).get("helm.sh/hook", "")
    return {e.strip() for e in raw.split(",") if e.strip()}


def hook_weight(doc):
    return int(doc["metadata"].get("annotations", {}).get("helm.sh/hook-weight", "0"))


def check_structure(doc, problems):
    schema = CRD_SCHEMAS[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{ref(doc)}: {path}: {error.message}")


DB_URL_KEYS = ("APP__DATABASE__URL", "APP__DATABASE__MIGRATION_URL")
# What each ExternalSecret of the chart is for, told by the keys its template writes.
ES_ROLES = {
    "app": ("APP__DATABASE__URL", "APP__AUTH__SIGNING_KEY"),
    "migration": ("APP__DATABASE__MIGRATION_URL",),
}


def es_role(es):
    template = es["spec"]["target"].get("template", {}).get("data", {})
    roles = [r for r, wanted in ES_ROLES.items() if wanted[0] in template]
    return roles[0] if len(roles) == 1 else None


def secret_readers(name, by_kind):
    return [
        d
        for kind in ("Deployment", "Job")
        for d in by_kind.get(kind, [])
        if any(e.get("secretRef", {}).get("name") == name for c in pod_spec(d)["containers"] for e in c.get("envFrom", []))
    ]


def ca_files(workload):
    """Files each container sees from a ConfigMap volume: mountPath/item path."""
    spec = pod_spec(workload)
    volumes = {v["name"]: v["configMap"] for v in spec.get("volumes", []) if "configMap" in v}
    files = set()
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            cm = volumes.get(mount["name"])
            if cm is None or not mount.get("readOnly"):
                continue
            for item in cm.get("items", []):
                files.add(f"{mount['mountPath'].rstrip('/')}/{item['path']}")
    return files


def check_db_url(es, key, url, readers, problems):
    if not url.startswith("postgres://"):
        problems.append(f"{ref(es)}: {key} must be a postgres:// URL")
        return
    query = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if "=" in p)
    mode = query.get("sslmode")
    if mode == "verify-full":
        root = query.get("sslrootcert")
        if not root:
            problems.append(f"{ref(es)}: {key} has sslmode=verify-full without sslrootcert")
        for reader in readers:
            if root and root not in ca_files(reader):
                problems.append(f"{ref(es)}: {key} names sslrootcert={root}, which {ref(reader)} does not mount read-only from a ConfigMap")
    elif mode != "require":
        problems.append(f"{ref(es)}: {key} must use sslmode=require or verify-full, has {mode}")


def check_external_secret(es, by_kind, problems):
    spec = es["spec"]
    target = spec["target"]
    name = target.get("name", es["metadata"]["name"])
    keys = {d["secretKey"] for d in spec["data"]}
    template = target.get("template", {}).get("data", {})
    role = es_role(es)
    if role is None:
        problems.append(f"{ref(es)}: template must write exactly one of {[w[0] for w in ES_ROLES.values()]}")
        return
    for wanted in ES_ROLES[role]:
        if wanted not in template:
            problems.append(f"{ref(es)}: target.template.data lacks {wanted}")
    for key, text in template.items():
        if text.count("{{") != text.count("}}"):
            problems.append(f"{ref(es)}: template {key}: unbalanced {{{{ }}}}")
        for used in re.findall(r"\{\{\s*\.([A-Za-z0-9_]+)", text):
            if used not in keys:
                problems.append(f"{ref(es)}: template {key} uses .{used}, which no spec.data secretKey defines")
    readers = secret_readers(name, by_kind)
    for key in DB_URL_KEYS:
        if key in template:
            check_db_url(es, key, template[key], readers, problems)
    if target.get("creationPolicy") != "Orphan":
        problems.append(f"{ref(es)}: target.creationPolicy must be Orphan (the hook is recreated at each upgrade)")
    events = hook_events(es)
    if not {"pre-install", "pre-upgrade"} <= events:
        problems.append(f"{ref(es)}: must be a pre-install,pre-upgrade hook so the migration Job finds the Secret")
    policy = es["metadata"].get("annotations", {}).get("helm.sh/hook-delete-policy", "")
    if "hook-succeeded" in policy:
        problems.append(f"{ref(es)}: hook-succeeded would delete it after the install and stop its refreshes")
    for job in by_kind.get("Job", []):
        if hook_events(job) & events and hook_weight(job) <= hook_weight(es):
            problems.append(f"{ref(es)}: hook weight must be below {ref(job)}'s")
    if not readers:
        problems.append(f"{ref(es)}: no Deployment or Job reads its target Secret {name}")
    if role == "migration":
        # The point of the second Secret: the schema owner's password never reaches the API pods.
        for reader in readers:
            if reader["kind"] != "Job":
                problems.append(f"{ref(es)}: {ref(reader)} reads the schema owner's Secret {name}; only the migration Job may")
    if role == "app" and any(r["kind"] == "Job" for r in readers):
        if not any(es_role(other) == "migration" for other in by_kind["ExternalSecret"]):
            problems.append(f"{ref(es)}: the migration Job gets no ExternalSecret with the owner's APP__DATABASE__MIGRATION_URL")


def check_http_route(route, services, problems):
    for rule in route["spec"].get("rules", []):
        for backend in rule.get("backendRefs", []):
            if backend.get("kind", "Service") != "Service" or backend.get("group", "") != "":
                continue
            service = services.get(backend["name"])
            if service is None:
                problems.append(f"{ref(route)}: backendRef {backend['name']} is not a rendered Service")
            elif backend.get("port") not in [p["port"] for p in service["spec"]["ports"]]:
                problems.append(f"{ref(route)}: backendRef port {backend.get('port')} is not a port of {ref(service)}")


def check_wiring(by_kind, problems):
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    configmaps = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    accounts = {a["metadata"]["name"] for a in by_kind.get("ServiceAccount", [])}
    secrets_made = {e["spec"]["target"].get("name", e["metadata"]["name"]) for e in by_kind.get("ExternalSecret", [])}
    workloads = [d for kind in ("Deployment", "Job", "Pod") for d in by_kind.get(kind, [])]

    for service in services.values():
        selector = service["spec"].get("selector", {})
        selected = [w for w in workloads if matches(selector, pod_labels(w))]
        if [w["kind"] for w in selected] != ["Deployment"]:
            problems.append(f"{ref(service)}: selector must match exactly the API Deployment's pods, matches {[ref(w) for w in selected]}")
            continue
        ports = {p["name"]: p["containerPort"] for c in pod_spec(selected[0])["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in ports and port["targetPort"] not in ports.values():
                problems.append(f"{ref(service)}: targetPort {port['targetPort']} is not a container port of {ref(selected[0])}")

    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                port = backend["port"]
                if service is None:
                    problems.append(f"{ref(ingress)}: backend {backend['name']} is not a rendered Service")
                elif not any(p.get("name") == port.get("name") or p["port"] == port.get("number") for p in service["spec"]["ports"]):
                    problems.append(f"{ref(ingress)}: backend port {port} is not a port of {ref(service)}")

    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            problems.append(f"{ref(hpa)}: scaleTargetRef {target} is not a rendered Deployment")
        elif "replicas" in deployments[target["name"]]["spec"]:
            problems.append(f"{ref(hpa)}: {target['name']} also sets spec.replicas, which each upgrade would reset")

    for pdb in by_kind.get("PodDisruptionBudget", []):
        selector = pdb["spec"]["selector"]["matchLabels"]
        if not any(matches(selector, pod_labels(d)) for d in deployments.values()):
            problems.append(f"{ref(pdb)}: selector matches no Deployment's pods")

    for policy in by_kind.get("NetworkPolicy", []):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if not any(matches(selector, pod_labels(w)) for w in workloads):
            problems.append(f"{ref(policy)}: podSelector matches no rendered pod")

    # Whatever the Secret sources: the migration Job reads everything the API pods read (it
    # grants to the app role of their APP__DATABASE__URL) and mounts the same CA bundle, while
    # the API pods never get a Secret or variable that only the Job has.
    def secret_refs(workload):
        return {e["secretRef"]["name"] for c in pod_spec(workload)["containers"] for e in c.get("envFrom", []) if "secretRef" in e}

    migration_jobs = [j for j in by_kind.get("Job", []) if "pre-upgrade" in hook_events(j)]
    for deployment in deployments.values():
        env_names = {e["name"] for c in pod_spec(deployment)["containers"] for e in c.get("env", [])}
        if "APP__DATABASE__MIGRATION_URL" in env_names:
            problems.append(f"{ref(deployment)}: sets APP__DATABASE__MIGRATION_URL; only the migration Job may have the owner's URL")
        for job in migration_jobs:
            if not secret_refs(deployment) <= secret_refs(job):
                problems.append(f"{ref(job)}: does not read every Secret {ref(deployment)} reads ({sorted(secret_refs(deployment) - secret_refs(job))})")
            if ca_files(deployment) != ca_files(job):
                problems.append(f"{ref(job)}: mounts CA files {sorted(ca_files(job))}, {ref(deployment)} {sorted(ca_files(deployment))}")

    for workload in workloads:
        spec = pod_spec(workload)
        # The release's normal objects are created only after the pre-install hooks ran.
        pre_install = "pre-install" in hook_events(workload)
        account = spec.get("serviceAccountName")
        if pre_install and account in accounts:
            problems.append(f"{ref(workload)}: a pre-install hook cannot use ServiceAccount {account}, created after the hooks")
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in configmaps:
                    problems.append(f"{ref(workload)}: envFrom ConfigMap {source['configMapRef']['name']} is not rendered")
                if "configMapRef" in source and pre_install:
                    problems.append(f"{ref(workload)}: a pre-install hook cannot read the release's ConfigMap, created after the hooks")
                secret = source.get("secretRef", {}).get("name")
                if secret and by_kind.get("ExternalSecret") and secret not in secrets_made:
                    problems.append(f"{ref(workload)}: envFrom Secret {secret} is not the ExternalSecret's target {sorted(secrets_made)}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    render, core_out = sys.argv[1], sys.argv[2]
    with open(render, encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]

    problems = []
    by_kind = {}
    core, crds = [], []
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
        (crds if (doc.get("apiVersion"), doc.get("kind")) in CRD_SCHEMAS else core).append(doc)

    for doc in crds:
        check_structure(doc, problems)
    if not problems:
        services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
        for es in by_kind.get("ExternalSecret", []):
            check_external_secret(es, by_kind, problems)
        for route in by_kind.get("HTTPRoute", []):
            check_http_route(route, services, problems)
        check_wiring(by_kind, problems)

    with open(core_out, "w", encoding="utf-8") as fh:
        yaml.safe_dump_all(core, fh, sort_keys=False)

    name = os.path.basename(render).removesuffix(".yaml")
    for problem in problems:
        print(f"  {name}: {problem}")
    crd_names = ", ".join(ref(d) for d in crds) or "none"
    print(f"  {name}: {len(core)} built-in objects (to kubernetes-validate); CRD objects checked structurally: {crd_names}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
