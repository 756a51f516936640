#!/usr/bin/env python3
"""Every value of the chart has a row in the README's values table, and every row is a value.

Usage: check_values_doc.py CHART_DIR
A value is a key of values.yaml; nested keys are listed one by one where the schema gives the
object required properties (image.tag), and as one row where it is a free map or list (config,
resources, ingress.hosts). Needs PyYAML.
"""

import json
import os
import re
import sys

import yaml


def leaves(values, schema, prefix=""):
    for key, value in values.items():
        path = f"{prefix}{key}"
        node = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and node.get("properties") and node.get("required"):
            yield from leaves(value, node, path + ".")
        else:
            yield path


def main():
    chart = sys.argv[1]
    with open(os.path.join(chart, "values.yaml"), encoding="utf-8") as fh:
        values = yaml.safe_load(fh)
    with open(os.path.join(chart, "values.schema.json"), encoding="utf-8") as fh:
        schema = json.load(fh)
    with open(os.path.join(chart, "README.md"), encoding="utf-8") as fh:
        section = fh.read().split("\n## Values\n", 1)[-1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", section, re.MULTILINE))
    wanted = set(leaves(values, schema))
    problems = [f"  README.md: no row for value {v}" for v in sorted(wanted - rows)]
    problems += [f"  README.md: row {r} is not a value of values.yaml" for r in sorted(rows - wanted)]
    print("\n".join(problems) if problems else f"  {len(wanted)} values, each with a README row")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
