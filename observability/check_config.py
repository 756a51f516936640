#!/usr/bin/env python3
"""Consistency checks of observability/ that no upstream tool makes offline.

Usage: check_config.py [OBSERVABILITY_DIR]   (run by observability/check.sh; needs PyYAML)

  compose      every file compose.yaml mounts exists
  collector    otel-collector.yaml: pipelines for traces, metrics and logs; each component they
               name is defined, each defined one is used; memory_limiter first, a redaction
               step, batch last; exporters and the health_check extension point at real places
  prometheus   prometheus.yml's rule files exist
  grafana      data source and dashboard provisioning agree with compose.yaml; every dashboard
               is JSON with a unique uid, unique panel ids, and only provisioned data sources
  metrics      every metric a dashboard, rule or data source queries (http_*, db_*, keel_*,
               process_*, less _bucket/_sum/_count) is in metrics.txt, and each line of
               metrics.txt is queried somewhere; the unit tests feed only those metrics
  rules        every alert has a severity, a summary, a description and a runbook_url whose
               anchor is a heading of docs/operations.md
  tests        every alert has a unit test where it fires and one where it must not
"""

import json
import os
import re
import sys
from urllib.parse import urlparse

import yaml

PREFIXES = ("http_", "db_", "keel_", "process_")
SUFFIXES = ("_bucket", "_sum", "_count")
SEVERITIES = {"page", "ticket"}
# Data sources Grafana has without provisioning.
BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Dashboard --", "-- Mixed --"}

problems = []


def problem(area, text):
    problems.append(f"{area}: {text}")


def load_yaml(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


# --- compose ---------------------------------------------------------------------------------


def check_compose(root):
    compose = load_yaml(os.path.join(root, "compose.yaml"))
    services = compose.get("services", {})
    mounts = {}  # host path (relative to observability/) -> container path, per service
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if source.startswith("."):
                path = os.path.normpath(os.path.join(root, source))
                if not os.path.exists(path):
                    problem("compose", f"service {name} mounts {source}, which does not exist")
                mounts.setdefault(name, {})[os.path.normpath(source)] = target
        image = service.get("image", "")
        if not re.search(r":[^:/]*\d[^:/]*$", image) or image.endswith(":latest"):
            problem("compose", f"service {name}: image {image!r} is not pinned to a version")
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problem("compose", f"service {name} publishes {port} beyond 127.0.0.1")
    return services, mounts


# --- collector -------------------------------------------------------------------------------


def host_of(endpoint):
    if "://" not in endpoint:
        endpoint = "//" + endpoint
    return urlparse(endpoint).hostname


def check_collector(root, services):
    config = load_yaml(os.path.join(root, "otel-collector.yaml"))
    sections = ("receivers", "processors", "exporters", "extensions")
    defined = {s: set((config.get(s) or {}).keys()) for s in sections}
    used = {s: set() for s in sections}
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    for signal in ("traces", "metrics", "logs"):
        if not any(p == signal or p.startswith(signal + "/") for p in pipelines):
            problem("collector", f"no {signal} pipeline")
    for name, pipeline in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section) or []:
                used[section].add(component)
                if component not in defined[section]:
                    problem("collector", f"pipeline {name} names {section[:-1]} {component}, which is not defined")
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problem("collector", f"pipeline {name} needs receivers and exporters")
        processors = pipeline.get("processors") or []
        kinds = [p.split("/")[0] for p in processors]
        if not kinds or kinds[0] != "memory_limiter":
            problem("collector", f"pipeline {name}: memory_limiter must be the first processor")
        if not kinds or kinds[-1] != "batch":
            problem("collector", f"pipeline {name}: batch must be the last processor")
        if not any(k == "redaction" or "redact" in p for k, p in zip(kinds, processors)):
            problem("collector", f"pipeline {name} has no redaction step")
    for extension in service.get("extensions") or []:
        used["extensions"].add(extension)
        if extension not in defined["extensions"]:
            problem("collector", f"service.extensions names {extension}, which is not defined")
    if not any(e.split("/")[0] == "health_check" for e in used["extensions"]):
        problem("collector", "no health_check extension in service.extensions")
    for section in sections:
        for component in sorted(defined[section] - used[section]):
            problem("collector", f"{section[:-1]} {component} is defined but no pipeline uses it")
    for name, exporter in (config.get("exporters") or {}).items():
        endpoint = (exporter or {}).get("endpoint")
        if endpoint and host_of(endpoint) not in services:
            problem("collector", f"exporter {name} sends to {endpoint}, not to a compose.yaml service")


# --- prometheus ------------------------------------------------------------------------------


def check_prometheus(root):
    directory = os.path.join(root, "prometheus")
    config = load_yaml(os.path.join(directory, "prometheus.yml"))
    files = config.get("rule_files") or []
    if not files:
        problem("prometheus", "prometheus.yml loads no rule files")
    for rule_file in files:
        if not os.path.exists(os.path.join(directory, rule_file)):
            problem("prometheus", f"rule file {rule_file} does not exist beside prometheus.yml")


# --- grafana ---------------------------------------------------------------------------------


def check_grafana(root, services, mounts):
    provisioning = os.path.join(root, "grafana", "provisioning")
    grafana_mounts = mounts.get("grafana", {})
    if grafana_mounts.get(os.path.normpath("./grafana/provisioning")) != "/etc/grafana/provisioning":
        problem("grafana", "compose.yaml must mount ./grafana/provisioning at /etc/grafana/provisioning")

    datasources = {}
    for file_name in sorted(os.listdir(os.path.join(provisioning, "datasources"))):
        for source in load_yaml(os.path.join(provisioning, "datasources", file_name)).get("datasources", []):
            uid = source.get("uid")
            if not uid:
                problem("grafana", f"data source {source.get('name')} has no uid")
                continue
            if uid in datasources:
                problem("grafana", f"data source uid {uid} is provisioned twice")
            datasources[uid] = source
            host = host_of(source.get("url", ""))
            if host not in services:
                problem("grafana", f"data source {uid} reads {source.get('url')}, not a compose.yaml service")
    for uid, source in datasources.items():
        for ref in linked_datasource_uids(source.get("jsonData") or {}):
            if ref not in datasources:
                problem("grafana", f"data source {uid} links to data source uid {ref}, which is not provisioned")

    dashboards_dir = None
    for file_name in sorted(os.listdir(os.path.join(provisioning, "dashboards"))):
        for provider in load_yaml(os.path.join(provisioning, "dashboards", file_name)).get("providers", []):
            dashboards_dir = (provider.get("options") or {}).get("path")
    if dashboards_dir != grafana_mounts.get(os.path.normpath("./grafana/dashboards")):
        problem("grafana", f"the dashboard provider reads {dashboards_dir}, where compose.yaml does not mount ./grafana/dashboards")
    return datasources


def linked_datasource_uids(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasourceUid" and isinstance(value, str):
                yield value
            else:
                yield from linked_datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from linked_datasource_uids(item)


def all_panels(panels):
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels") or [])


def datasource_uid(ref):
    if isinstance(ref, dict):
        return ref.get("uid")
    return ref  # a bare string is a uid or a name (older dashboards)


def check_dashboards(root, datasources):
    """Returns [(where, PromQL expression)] of every Prometheus query of the dashboards."""
    directory = os.path.join(root, "grafana", "dashboards")
    queries = []
    uids = {}
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        problem("dashboards", "no dashboard in grafana/dashboards")
    for file_name in files:
        where = f"grafana/dashboards/{file_name}"
        try:
            with open(os.path.join(directory, file_name), encoding="utf-8") as fh:
                board = json.load(fh)
        except json.JSONDecodeError as err:
            problem("dashboards", f"{where} is not JSON: {err}")
            continue
        uid = board.get("uid")
        if not uid:
            problem("dashboards", f"{where} has no uid")
        elif uid in uids:
            problem("dashboards", f"{where} and {uids[uid]} share the uid {uid}")
        uids[uid] = where
        ids = {}
        for panel in all_panels(board.get("panels") or []):
            panel_id = panel.get("id")
            if panel_id is None:
                problem("dashboards", f"{where}: panel {panel.get('title')!r} has no id")
            elif panel_id in ids:
                problem("dashboards", f"{where}: panels {ids[panel_id]!r} and {panel.get('title')!r} share the id {panel_id}")
            ids[panel_id] = panel.get("title")
            panel_ds = datasource_uid(panel.get("datasource"))
            for target in panel.get("targets") or []:
                uid_ = datasource_uid(target.get("datasource")) or panel_ds
                check_datasource_ref(where, panel.get("title"), uid_, datasources)
                if datasource_type(uid_, datasources) == "prometheus" and target.get("expr"):
                    queries.append((f"{where}: {panel.get('title')}", target["expr"]))
            if panel.get("type") != "row" and panel_ds is not None:
                check_datasource_ref(where, panel.get("title"), panel_ds, datasources)
        for variable in (board.get("templating") or {}).get("list", []):
            uid_ = datasource_uid(variable.get("datasource"))
            if uid_ is not None:
                check_datasource_ref(where, f"variable {variable.get('name')}", uid_, datasources)
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and datasource_type(uid_, datasources) == "prometheus" and query:
                queries.append((f"{where}: variable {variable.get('name')}", query))
    return queries


def check_datasource_ref(where, what, uid, datasources):
    if uid is None:
        problem("dashboards", f"{where}: {what!r} names no data source")
    elif uid not in datasources and uid not in BUILTIN_DATASOURCES:
        problem("dashboards", f"{where}: {what!r} uses data source uid {uid}, which is not provisioned")


def datasource_type(uid, datasources):
    return (datasources.get(uid) or {}).get("type")


# --- metric names ----------------------------------------------------------------------------


def metric_names(expr):
    """Names of the series an expression (PromQL, or a Grafana label_values() query) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    # Grafana's label_values(metric, label) and label_values(label): the label is no metric.
    text = re.sub(r"\blabel_values\s*\(\s*([^,()]*?)\s*,\s*[A-Za-z_]\w*\s*\)", r" \1 ", text)
    text = re.sub(r"\blabel_values\s*\(\s*[A-Za-z_]\w*\s*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])[A-Za-z_:][\w:]*", text):
        name = match.group(0)
        after = text[match.end():].lstrip()
        if after.startswith("("):
            continue  # a function
        if name.startswith(PREFIXES):
            names.add(name)
    return names


def resolve(name, known):
    """The metrics.txt entry a series name belongs to, or None."""
    if name in known:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return None


def read_metrics(root):
    names = []
    with open(os.path.join(root, "metrics.txt"), encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", line):
                problem("metrics", f"metrics.txt:{number}: {line!r} is not a metric name")
            if line in names:
                problem("metrics", f"metrics.txt:{number}: {line} is listed twice")
            names.append(line)
    return set(names)


def check_metrics(root, queries, tests):
    known = read_metrics(root)
    used = set()
    for where, expr in queries:
        for name in sorted(metric_names(expr)):
            entry = resolve(name, known)
            if entry is None:
                problem("metrics", f"{where} queries {name}, which metrics.txt does not list")
            else:
                used.add(entry)
    for name in sorted(known - used):
        problem("metrics", f"metrics.txt lists {name}, which no dashboard, rule or data source queries")
    for test in tests:
        for series in test.get("input_series") or []:
            name = series["series"].split("{")[0].strip()
            if resolve(name, known) is None:
                problem("tests", f"test {test.get('name')!r} feeds {name}, which metrics.txt does not list")
    return len(known)


# --- rules, runbook and tests ----------------------------------------------------------------


def github_anchors(markdown):
    anchors = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', markdown))
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and not in_code:
            heading = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)).lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def check_rules(root, repo):
    rules = load_yaml(os.path.join(root, "prometheus", "alerts.yaml"))
    with open(os.path.join(repo, "docs", "operations.md"), encoding="utf-8") as fh:
        anchors = github_anchors(fh.read())
    queries, alerts = [], []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            queries.append((f"prometheus/alerts.yaml: {name}", rule["expr"]))
            if "alert" not in rule:
                continue
            alerts.append(name)
            labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
            if labels.get("severity") not in SEVERITIES:
                problem("rules", f"{name}: severity must be one of {sorted(SEVERITIES)}")
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key):
                    problem("rules", f"{name} has no {key} annotation")
            url = annotations.get("runbook_url", "")
            match = re.fullmatch(r"docs/operations\.md#([\w-]+)", url)
            if not match:
                problem("rules", f"{name}: runbook_url {url!r} is not docs/operations.md#<anchor>")
            elif match.group(1) not in anchors:
                problem("rules", f"{name}: docs/operations.md has no heading with the anchor #{match.group(1)}")
    return queries, alerts


def check_tests(root, alerts):
    tests = load_yaml(os.path.join(root, "prometheus", "alerts.test.yaml")).get("tests", [])
    fires, quiet = set(), set()
    for test in tests:
        for case in test.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    for name in alerts:
        if name not in fires:
            problem("tests", f"{name} has no unit test in which it fires")
        if name not in quiet:
            problem("tests", f"{name} has no unit test in which it must not fire")
    for name in sorted((fires | quiet) - set(alerts)):
        problem("tests", f"a unit test expects {name}, which alerts.yaml does not define")
    return tests


def datasource_queries(datasources):
    queries = []
    for uid, source in datasources.items():
        if source.get("type") != "tempo":
            continue
        for query in ((source.get("jsonData") or {}).get("tracesToMetrics") or {}).get("queries", []):
            queries.append((f"data source {uid}: {query.get('name')}", query.get("query", "")))
    return queries


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__))
    repo = os.path.dirname(root)
    services, mounts = check_compose(root)
    check_collector(root, services)
    check_prometheus(root)
    datasources = check_grafana(root, services, mounts)
    queries = check_dashboards(root, datasources)
    rule_queries, alerts = check_rules(root, repo)
    tests = check_tests(root, alerts)
    queries += rule_queries + datasource_queries(datasources)
    count = check_metrics(root, queries, tests)
    if problems:
        print("\n".join(f"  {p}" for p in problems))
        sys.exit(1)
    print(f"  {len(services)} services, {len(datasources)} data sources, {len(queries)} queries over "
          f"{count} metrics, {len(alerts)} alerts with runbook sections and firing/quiet tests")


if __name__ == "__main__":
    main()
