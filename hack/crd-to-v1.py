#!/usr/bin/env python3
"""Converts apiextensions.k8s.io/v1beta1 CustomResourceDefinitions to v1.

    hack/crd-to-v1.py < in.yaml > out.yaml

Kubernetes stopped serving v1beta1 CRDs in 1.22, yet some projects (SMI) publish only
that form. v1 moves the top-level validation, printer columns and subresources into each
version and requires a structural schema: every node typed. Unknown fields are pruned, as
v1 always does. Needs PyYAML.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `type: object` wherever properties are declared without a type."""
    result = dict(schema)
    if "properties" in result:
        result.setdefault("type", "object")
        result["properties"] = {name: structural(sub) for name, sub in result["properties"].items()}
    if "items" in result:
        result["items"] = structural(result["items"])
    return result


def printer_column(column: dict[str, Any]) -> dict[str, Any]:
    return {("jsonPath" if key == "JSONPath" else key): value for key, value in column.items()}


def to_v1(crd: dict[str, Any]) -> dict[str, Any]:
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1beta1":
        return crd
    spec = dict(crd["spec"])
    schema = spec.pop("validation", {}).get("openAPIV3Schema", {})
    columns = spec.pop("additionalPrinterColumns", None)
    subresources = spec.pop("subresources", None)
    single_version = spec.pop("version", None)
    spec.pop("preserveUnknownFields", None)
    versions = spec.get("versions") or [{"name": single_version, "served": True, "storage": True}]
    converted = []
    for version in versions:
        entry = dict(version)
        entry.setdefault("schema", {"openAPIV3Schema": schema})
        entry["schema"] = {"openAPIV3Schema": structural(entry["schema"]["openAPIV3Schema"])}
        if columns:
            entry.setdefault("additionalPrinterColumns", columns)
        if "additionalPrinterColumns" in entry:
            entry["additionalPrinterColumns"] = [printer_column(c) for c in entry["additionalPrinterColumns"]]
        if subresources:
            entry.setdefault("subresources", subresources)
        converted.append(entry)
    spec["versions"] = converted
    return {**crd, "apiVersion": "apiextensions.k8s.io/v1", "spec": spec}


class NoAliasDumper(yaml.SafeDumper):
    """Writes each version's copy of the shared schema in full instead of as YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main() -> None:
    documents = [doc for doc in yaml.safe_load_all(sys.stdin) if doc]
    yaml.dump_all([to_v1(doc) for doc in documents], sys.stdout, Dumper=NoAliasDumper, sort_keys=False)


if __name__ == "__main__":
    main()
