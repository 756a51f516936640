#!/usr/bin/env python3
"""Checks of one rendered release (`helm template` output) that no schema tool does here.

Usage: check_render.py RENDER.yaml CORE_OUT.yaml [VALUES.yaml ...]

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
4. Workload check: the API (`keel serve`) and worker (`keel worker`) Deployments. Every selector
   (Deployment, Service, PDB, HPA target, NetworkPolicy, spread constraint) picks the pods of
   exactly one workload, so the API's never reach the worker's pods; the API sets
   APP__WORKER__ENABLED=false exactly when a worker Deployment is rendered; the worker pod is
   hardened like the API pod (same security contexts, service account and token, Secrets,
   ConfigMap, volumes and environment) and probes /health/live and /health/ready; each
   Deployment's grace period exceeds its preStop sleep + the shutdown timeout + 2s.
   With VALUES (the chart's values.yaml, then the files given to helm -f, merged as helm does):
   the worker Deployment exists exactly when worker.enabled, each Deployment has its own PDB
   exactly when podDisruptionBudget.enabled, and each pod its own NetworkPolicy exactly when
   networkPolicy.enabled.
5. Secret check: no secret key (database URLs, signing key, APP__WEBHOOKS__ENCRYPTION_KEYS__*,
   APP__EMAIL__SMTP_PASSWORD) in the ConfigMap; the owner's ExternalSecret carries only
   APP__DATABASE__MIGRATION_URL; the pods' ExternalSecret writes at least one webhook
   encryption key. With VALUES: it writes APP__WEBHOOKS__ENCRYPTION_KEYS__<ID> for exactly the
   configured key ids (webhookEncryptionKey and its previousKeys), each from the remote secret
   and property the values name, the active key (config.APP__WEBHOOKS__ACTIVE_KEY, default k1)
   among them, and APP__EMAIL__SMTP_PASSWORD exactly when smtpPassword.remoteKey is set.
6. Egress check: every ipBlock's except ranges lie strictly inside its cidr; internet egress
   (an ipBlock, or a rule without `to`, admitting public addresses outside the ranges the values
   name for the database and the collector) only on the pods that run the background work (the
   worker's when a worker Deployment is rendered, else the API's), never on every port, and
   never on the API pods beside a worker, the migration Job or the test pod; the relay's egress
   likewise. With VALUES: the working pods have exactly one internet rule when
   networkPolicy.webhookEgress.enabled (none otherwise), on webhookEgress.ports, admitting none
   of the app's SSRF ranges (private, CGNAT, link-local, loopback) but those the app allowlists
   (config.APP__WEBHOOKS__ALLOWED_NETWORKS, which that rule opens too), and one rule to
   networkPolicy.smtp.cidrs on its port
   when those are set.

Prints one line per finding; exits 1 when there is any. Needs PyYAML and jsonschema (both are
dependencies of kubernetes-validate, so its venv has them).
"""

import ipaddress
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
    if role == "app" and not any(k.startswith(WEBHOOK_KEY_PREFIX) for k in template):
        problems.append(f"{ref(es)}: writes no {WEBHOOK_KEY_PREFIX}<ID>; production refuses to start without a webhook encryption key")
    if role == "app" and any(r["kind"] == "Job" for r in readers):
        if not any(es_role(other) == "migration" for other in by_kind["ExternalSecret"]):
            problems.append(f"{ref(es)}: the migration Job gets no ExternalSecret with the owner's APP__DATABASE__MIGRATION_URL")


# Keys that are secrets: never in the ConfigMap, only in the Secrets the pods read.
SECRET_KEYS = ("APP__DATABASE__URL", "APP__DATABASE__MIGRATION_URL", "APP__AUTH__SIGNING_KEY", "APP__EMAIL__SMTP_PASSWORD")
WEBHOOK_KEY_PREFIX = "APP__WEBHOOKS__ENCRYPTION_KEYS__"


def is_secret_key(key):
    return key in SECRET_KEYS or key.startswith(WEBHOOK_KEY_PREFIX)


def remote_ref(es, template_key):
    """The remoteRef behind one key of the target template (its single {{ .secretKey }})."""
    text = es["spec"]["target"].get("template", {}).get("data", {}).get(template_key, "")
    used = re.findall(r"\{\{\s*\.([A-Za-z0-9_]+)", text)
    refs = [d["remoteRef"] for d in es["spec"]["data"] if d["secretKey"] in used]
    return refs[0] if len(refs) == 1 else None


def check_secrets(by_kind, values, problems):
    """The pods' Secret carries the webhook encryption keys and the SMTP password the values ask
    for, from the remote secrets they name, and no secret sits in the ConfigMap."""
    for configmap in by_kind.get("ConfigMap", []):
        for key in configmap.get("data", {}):
            if is_secret_key(key):
                problems.append(f"{ref(configmap)}: holds the secret {key}; secrets belong in the Secret")
    app = [es for es in by_kind.get("ExternalSecret", []) if es_role(es) == "app"]
    migration = [es for es in by_kind.get("ExternalSecret", []) if es_role(es) == "migration"]
    for es in migration:
        extra = sorted(set(es["spec"]["target"].get("template", {}).get("data", {})) - {"APP__DATABASE__MIGRATION_URL"})
        if extra:
            problems.append(f"{ref(es)}: the owner's Secret carries only APP__DATABASE__MIGRATION_URL, has also {extra}")
    if values is None:
        return
    es_values = values.get("externalSecret", {})
    if not es_values.get("enabled"):
        if app:
            problems.append(f"externalSecret.enabled is false, yet {[ref(e) for e in app]} is rendered")
        return
    if len(app) != 1:
        problems.append(f"externalSecret.enabled, so one ExternalSecret builds the pods' Secret; found {[ref(e) for e in app]}")
        return
    es = app[0]
    template = es["spec"]["target"].get("template", {}).get("data", {})
    current = es_values.get("webhookEncryptionKey", {})
    wanted = {}
    for key in [current, *current.get("previousKeys", [])]:
        wanted[WEBHOOK_KEY_PREFIX + key["keyId"].upper()] = key
    have = {k for k in template if k.startswith(WEBHOOK_KEY_PREFIX)}
    if have != set(wanted):
        problems.append(f"{ref(es)}: webhook encryption keys {sorted(have)}, the values ask for {sorted(wanted)}")
    for name, key in wanted.items():
        if name not in template:
            continue
        got = remote_ref(es, name)
        want = {"key": key["remoteKey"], **({"property": key["property"]} if key.get("property") else {})}
        if got != want:
            problems.append(f"{ref(es)}: {name} comes from {got}, the values name {want}")
    # The id the app encrypts new secrets with must be one the Secret holds (lower-cased back).
    active = values.get("config", {}).get("APP__WEBHOOKS__ACTIVE_KEY") or "k1"
    if have and active not in {k.removeprefix(WEBHOOK_KEY_PREFIX).lower() for k in have}:
        problems.append(f"{ref(es)}: APP__WEBHOOKS__ACTIVE_KEY {active!r} is not among its keys {sorted(have)}")
    smtp = es_values.get("smtpPassword", {})
    if bool(smtp.get("remoteKey")) != ("APP__EMAIL__SMTP_PASSWORD" in template):
        problems.append(f"{ref(es)}: APP__EMAIL__SMTP_PASSWORD must be rendered exactly when externalSecret.smtpPassword.remoteKey is set")
    elif smtp.get("remoteKey"):
        got = remote_ref(es, "APP__EMAIL__SMTP_PASSWORD")
        want = {"key": smtp["remoteKey"], **({"property": smtp["property"]} if smtp.get("property") else {})}
        if got != want:
            problems.append(f"{ref(es)}: APP__EMAIL__SMTP_PASSWORD comes from {got}, the values name {want}")


# The app's SSRF rule at the network layer (app/src/features/webhooks/ssrf.rs): the ranges
# webhook egress keeps closed unless the app allowlists them (APP__WEBHOOKS__ALLOWED_NETWORKS).
SSRF_RANGES = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")
)
# Not the internet: those, the other special-purpose blocks, and their IPv6 counterparts.
NON_PUBLIC = SSRF_RANGES + tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32",
    )
)
EVERYWHERE = ({"cidr": "0.0.0.0/0"}, {"cidr": "::/0"})


def subtract(networks, hole):
    """networks (a list of ip_network) without the addresses of hole."""
    left = []
    for net in networks:
        if net.version != hole.version or not net.overlaps(hole):
            left.append(net)
        elif not net.subnet_of(hole):
            left.extend(net.address_exclude(hole))
    return left


def allowed(block):
    """The addresses an ipBlock admits: its cidr without its except ranges."""
    nets = [ipaddress.ip_network(block["cidr"], strict=False)]
    for hole in block.get("except", []):
        nets = subtract(nets, ipaddress.ip_network(hole, strict=False))
    return nets


def public(block):
    nets = allowed(block)
    for hole in NON_PUBLIC:
        nets = subtract(nets, hole)
    return nets


def egress_blocks(rule):
    """The ipBlocks of one egress rule; a rule without `to` admits every address."""
    if "to" not in rule:
        return list(EVERYWHERE)
    return [peer["ipBlock"] for peer in rule["to"] if "ipBlock" in peer]


def rule_ports(rule):
    """{(protocol, port)} of a rule; None when it names no port (every port)."""
    if not rule.get("ports"):
        return None
    return {(p.get("protocol", "TCP"), p.get("port")) for p in rule["ports"]}


def check_egress(by_kind, values, problems):
    """Internet egress (webhook delivery) and SMTP egress exactly on the pods that run the
    background work: the worker's when a worker Deployment is rendered, else the API's; never
    on the API pods beside a worker, the migration Job or the test pod."""
    deployments = by_kind.get("Deployment", [])
    worker = next((d for d in deployments if role(d) == "worker"), None)
    api = next((d for d in deployments if role(d) == "api"), None)
    working = worker or api
    policies = by_kind.get("NetworkPolicy", [])

    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            for block in egress_blocks(rule):
                cidr = ipaddress.ip_network(block["cidr"], strict=False)
                for hole in block.get("except", []):
                    hole = ipaddress.ip_network(hole, strict=False)
                    if hole.version != cidr.version or not hole.subnet_of(cidr) or hole == cidr:
                        problems.append(f"{ref(policy)}: except {hole} is not a strict subset of {cidr}; the API server refuses it")

    np_values = (values or {}).get("networkPolicy", {})
    named = {
        *np_values.get("databaseCidrs", []),
        *np_values.get("otelCollector", {}).get("cidrs", []),
    }
    smtp = np_values.get("smtp", {})
    smtp_cidrs = smtp.get("cidrs", [])
    webhook = np_values.get("webhookEgress", {})
    config = (values or {}).get("config", {})
    app_allowed = [ipaddress.ip_network(n.strip(), strict=False) for n in str(config.get("APP__WEBHOOKS__ALLOWED_NETWORKS") or "").split(",") if n.strip()]

    for workload in pod_workloads(by_kind):
        own = [p for p in policies if matches(p["spec"]["podSelector"].get("matchLabels", {}), pod_labels(workload))]
        runs_work = workload is working
        rules = [r for p in own for r in p["spec"].get("egress", [])]
        internet = []
        for rule in rules:
            for block in egress_blocks(rule):
                # A range the values name for the database, the collector or the relay is a
                # destination, not the internet, even when its addresses are public.
                if block["cidr"] in named or (runs_work and block["cidr"] in smtp_cidrs and not block.get("except")):
                    continue
                if public(block):
                    internet.append((rule, block))
        for rule, block in internet:
            if rule_ports(rule) is None:
                problems.append(f"{ref(workload)}: egress to the internet ({block['cidr']}) on every port")
        if not runs_work and internet:
            why = "runs beside the worker Deployment, which does the background work" if workload is api else "runs no background work"
            problems.append(f"{ref(workload)}: has internet egress ({sorted({b['cidr'] for _, b in internet})}) but {why}")
        if not runs_work and smtp_cidrs:
            for rule in rules:
                blocks = {b["cidr"] for b in egress_blocks(rule)}
                if ("TCP", smtp.get("port")) in (rule_ports(rule) or set()) and blocks & set(smtp_cidrs):
                    problems.append(f"{ref(workload)}: has the SMTP relay's egress but runs no background work")
        if values is None or not runs_work or not own:
            continue
        # The pods that do the work: webhook delivery and the relay, as the values configure.
        if webhook.get("enabled"):
            want = {("TCP", p) for p in webhook.get("ports", [])}
            if len(internet) != 1:
                problems.append(f"{ref(workload)}: runs the background work with networkPolicy.webhookEgress.enabled, so it needs one internet egress rule, has {len(internet)}")
            for rule, block in internet:
                peers = {ipaddress.ip_network(b["cidr"], strict=False) for b in egress_blocks(rule)}
                missing = sorted(str(n) for n in app_allowed if n not in peers)
                if missing:
                    problems.append(f"{ref(workload)}: webhook egress lacks {missing}, which the app allowlists (APP__WEBHOOKS__ALLOWED_NETWORKS)")
                if rule_ports(rule) != want:
                    problems.append(f"{ref(workload)}: webhook egress opens {sorted(rule_ports(rule) or [])}, networkPolicy.webhookEgress.ports is {sorted(want)}")
                reach = allowed(block)
                for net in app_allowed:
                    reach = subtract(reach, net)
                for closed_range in SSRF_RANGES:
                    if any(n.overlaps(closed_range) for n in reach):
                        problems.append(f"{ref(workload)}: webhook egress ({block['cidr']}) reaches {closed_range}, which the app refuses as an SSRF target and does not allowlist")
        elif internet:
            problems.append(f"{ref(workload)}: networkPolicy.webhookEgress.enabled is false, yet it has internet egress")
        if smtp_cidrs:
            want = ({("TCP", smtp.get("port"))}, sorted(smtp_cidrs))
            found = [r for r in rules if (rule_ports(r), sorted(b["cidr"] for b in egress_blocks(r))) == want]
            if len(found) != 1:
                problems.append(f"{ref(workload)}: runs the background work, so it needs one egress rule to networkPolicy.smtp.cidrs on port {smtp.get('port')}, has {len(found)}")


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


# The app's default of server.shutdown_timeout (app/config/default.toml), as the chart assumes.
DEFAULT_SHUTDOWN_TIMEOUT = "25s"
# 2: the app's bound on closing its database pools after the drain (server/lifecycle.rs).
POOL_CLOSE_SECONDS = 2


def coalesce(base, override):
    """Values files merged the way helm does: maps deep-merged, null removes a key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(paths):
    values = {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            values = coalesce(values, yaml.safe_load(fh) or {})
    return values


def role(deployment):
    """'api' for `keel serve`, 'worker' for `keel worker`, else the args."""
    args = pod_spec(deployment)["containers"][0].get("args", [])
    return {("serve",): "api", ("worker",): "worker"}.get(tuple(args), str(args))


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def seconds(duration):
    """Whole seconds of "<n>s" / "<n>m" (the forms the chart checks), else None."""
    match = re.fullmatch(r"([0-9]+)([sm])", duration or "")
    if not match:
        return None
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def pod_workloads(by_kind):
    return [d for kind in ("Deployment", "Job", "Pod") for d in by_kind.get(kind, [])]


def selected(selector, by_kind):
    return [w for w in pod_workloads(by_kind) if matches(selector, pod_labels(w))]


def check_workloads(by_kind, values, problems):
    deployments = by_kind.get("Deployment", [])
    roles = {}
    for deployment in deployments:
        roles.setdefault(role(deployment), []).append(deployment)
    for name, found in roles.items():
        if name not in ("api", "worker"):
            problems.append(f"{[ref(d) for d in found]}: a Deployment runs neither `keel serve` nor `keel worker` ({name})")
        elif len(found) > 1:
            problems.append(f"{[ref(d) for d in found]}: more than one {name} Deployment")
    api = roles.get("api", [None])[0]
    worker = roles.get("worker", [None])[0]
    if api is None:
        problems.append("no API Deployment (`keel serve`) rendered")
        return

    # Disjoint selectors: each picks the pods of exactly the one workload it is meant for.
    for deployment in deployments:
        own = [ref(deployment)]
        selector = deployment["spec"]["selector"]["matchLabels"]
        picked = [ref(w) for w in selected(selector, by_kind)]
        if picked != own:
            problems.append(f"{ref(deployment)}: selector must match only its own pods, matches {picked}")
        for constraint in pod_spec(deployment).get("topologySpreadConstraints", []):
            labels = constraint.get("labelSelector", {}).get("matchLabels", {})
            picked = [ref(w) for w in selected(labels, by_kind)]
            if picked != own:
                problems.append(f"{ref(deployment)}: spread over {constraint['topologyKey']} counts {picked}, not only its own pods")
    for service in by_kind.get("Service", []):
        picked = [ref(w) for w in selected(service["spec"].get("selector", {}), by_kind)]
        if picked != [ref(api)]:
            problems.append(f"{ref(service)}: must select only the API pods, selects {picked}")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        if hpa["spec"]["scaleTargetRef"]["name"] != api["metadata"]["name"]:
            problems.append(f"{ref(hpa)}: scales {hpa['spec']['scaleTargetRef']['name']}, not the API Deployment")
    budgets = {}
    for pdb in by_kind.get("PodDisruptionBudget", []):
        picked = selected(pdb["spec"]["selector"]["matchLabels"], by_kind)
        if len(picked) != 1 or picked[0]["kind"] != "Deployment":
            problems.append(f"{ref(pdb)}: must select the pods of one Deployment, selects {[ref(w) for w in picked]}")
        for workload in picked:
            budgets.setdefault(ref(workload), []).append(ref(pdb))
    policies = {}
    for policy in by_kind.get("NetworkPolicy", []):
        picked = selected(policy["spec"]["podSelector"].get("matchLabels", {}), by_kind)
        if len(picked) > 1:
            problems.append(f"{ref(policy)}: selects the pods of several workloads {[ref(w) for w in picked]}; each has its own rules")
        for workload in picked:
            policies.setdefault(ref(workload), []).append(ref(policy))

    # The API leaves background work out exactly when the worker Deployment runs it.
    if "APP__WORKER__ENABLED" in {k for c in by_kind.get("ConfigMap", []) for k in c.get("data", {})}:
        problems.append("ConfigMap: sets APP__WORKER__ENABLED, which would reach the API and worker pods alike")
    api_env = env_of(pod_spec(api)["containers"][0])
    flag = api_env.get("APP__WORKER__ENABLED")
    if worker is not None and flag != "false":
        problems.append(f"{ref(api)}: a worker Deployment runs background work, so the API needs APP__WORKER__ENABLED=false (has {flag!r})")
    if worker is None and flag is not None:
        problems.append(f"{ref(api)}: sets APP__WORKER__ENABLED={flag!r} but no worker Deployment runs the work")

    if worker is not None:
        check_worker_like_api(api, worker, problems)

    # Each Deployment's grace period outlasts its preStop sleep, the app's drain (or the job in
    # hand) within the shutdown timeout, and the close of its pools.
    configured = {k: v for c in by_kind.get("ConfigMap", []) for k, v in c.get("data", {}).items()}
    for deployment in deployments:
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        # A container's own env wins over its envFrom ConfigMap, as in Kubernetes.
        raw = env_of(container).get("APP__SERVER__SHUTDOWN_TIMEOUT")
        if raw is None:
            raw = configured.get("APP__SERVER__SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT)
        shutdown = seconds(raw)
        if shutdown is None:
            continue
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace <= sleep + shutdown + POOL_CLOSE_SECONDS:
            problems.append(f"{ref(deployment)}: terminationGracePeriodSeconds {grace} must exceed preStop {sleep}s + shutdown timeout {shutdown}s + {POOL_CLOSE_SECONDS}s")

    if values is None:
        return
    wanted = bool(values.get("worker", {}).get("enabled"))
    if wanted != (worker is not None):
        problems.append(f"worker.enabled is {str(wanted).lower()}, but the render has {'a' if worker is not None else 'no'} worker Deployment")
    pdb_wanted = bool(values.get("podDisruptionBudget", {}).get("enabled"))
    for deployment in deployments:
        have = budgets.get(ref(deployment), [])
        if pdb_wanted and len(have) != 1:
            problems.append(f"{ref(deployment)}: podDisruptionBudget.enabled, so it needs exactly one PDB, has {have}")
        if not pdb_wanted and have:
            problems.append(f"{ref(deployment)}: podDisruptionBudget.enabled is false, yet {have} select it")
    np_wanted = bool(values.get("networkPolicy", {}).get("enabled"))
    for workload in pod_workloads(by_kind):
        have = policies.get(ref(workload), [])
        if np_wanted and len(have) != 1:
            problems.append(f"{ref(workload)}: networkPolicy.enabled, so it needs exactly one NetworkPolicy, has {have}")
        if not np_wanted and have:
            problems.append(f"{ref(workload)}: networkPolicy.enabled is false, yet {have} select it")


def check_worker_like_api(api, worker, problems):
    """The worker pod is the API pod with another command: hardened and wired the same."""
    a, w = pod_spec(api), pod_spec(worker)
    ac, wc = a["containers"][0], w["containers"][0]
    pod_fields = (
        "securityContext",
        "serviceAccountName",
        "automountServiceAccountToken",
        "volumes",
        "imagePullSecrets",
        "terminationGracePeriodSeconds",
    )
    for field in pod_fields:
        if a.get(field) != w.get(field):
            problems.append(f"{ref(worker)}: pod {field} differs from the API's: {w.get(field)!r} vs {a.get(field)!r}")
    for field in ("image", "imagePullPolicy", "securityContext", "envFrom", "volumeMounts"):
        if ac.get(field) != wc.get(field):
            problems.append(f"{ref(worker)}: container {field} differs from the API's: {wc.get(field)!r} vs {ac.get(field)!r}")
    api_env = {k: v for k, v in env_of(ac).items() if k != "APP__WORKER__ENABLED"}
    if env_of(wc) != api_env:
        problems.append(f"{ref(worker)}: env differs from the API's (besides APP__WORKER__ENABLED)")
    if w.get("automountServiceAccountToken") is not False and a.get("automountServiceAccountToken") is False:
        problems.append(f"{ref(worker)}: mounts a service account token, which the API does not")
    ports = {p["name"]: p["containerPort"] for p in wc.get("ports", [])}
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = wc.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in (*ports, *ports.values()):
            problems.append(f"{ref(worker)}: {probe} must GET {path} on a container port, has {get}")
    if "resources" not in wc:
        problems.append(f"{ref(worker)}: the worker container has no resources")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    render, core_out = sys.argv[1], sys.argv[2]
    values = load_values(sys.argv[3:]) if len(sys.argv) > 3 else None
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
        check_workloads(by_kind, values, problems)
        check_secrets(by_kind, values, problems)
        check_egress(by_kind, values, problems)

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
