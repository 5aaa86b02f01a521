#!/usr/bin/python3
"""Check Kubernetes manifests offline with the official Kubernetes Python client's models
(Debian's python3-kubernetes): every document must be an object the client knows
(apiVersion + kind), every field must be one of its model's fields (checked recursively,
so a misspelt key fails), and the models' own validation must accept it (required
fields, enum values). Prints, as JSON, one entry per document: kind, name and, for Jobs,
the fields the caller checks further (spec and the first container's command, args, env).

Usage: k8s-check.py MANIFEST.yaml
"""

import json
import re
import sys

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

KINDS = {
    ("batch/v1", "Job"): "V1Job",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
}


def fail(msg):
    print(f"k8s-check: {msg}", file=sys.stderr)
    sys.exit(1)


def strict(data, type_name, path):
    """Every key of `data` must be a field of the model `type_name`, recursively."""
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(data, list):
            fail(f"{path}: expected a list")
        for i, item in enumerate(data):
            strict(item, m.group(1), f"{path}[{i}]")
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(data, dict):
            fail(f"{path}: expected a mapping")
        for k, v in data.items():
            strict(v, m.group(1), f"{path}.{k}")
        return
    model = getattr(client, type_name, None)
    if model is None:
        return  # str, int, bool, object, datetime: the client's deserializer checks them
    if not isinstance(data, dict):
        fail(f"{path}: expected a {type_name} mapping")
    by_key = {v: k for k, v in model.attribute_map.items()}
    for key, value in data.items():
        attr = by_key.get(key)
        if attr is None:
            fail(f"{path}.{key}: not a field of {type_name}")
        strict(value, model.openapi_types[attr], f"{path}.{key}")


def check(doc, index):
    if not isinstance(doc, dict):
        fail(f"document {index} is not a mapping")
    key = (doc.get("apiVersion"), doc.get("kind"))
    type_name = KINDS.get(key)
    if type_name is None:
        fail(f"document {index}: unknown apiVersion/kind {key}")
    strict(doc, type_name, key[1])
    try:
        obj = ApiClient()._ApiClient__deserialize(doc, type_name)
    except (ValueError, TypeError) as e:
        fail(f"document {index} ({key[1]}): {e}")
    if obj.metadata is None or not obj.metadata.name:
        fail(f"document {index} ({key[1]}): metadata.name is required")
    out = {"kind": key[1], "name": obj.metadata.name}
    if key[1] == "Job":
        spec = obj.spec
        if spec is None or spec.template is None or spec.template.spec is None:
            fail("Job: spec.template.spec is required")
        pod = spec.template.spec
        if not pod.containers:
            fail("Job: a container is required")
        c = pod.containers[0]
        out.update(
            {
                "completionMode": spec.completion_mode,
                "completions": spec.completions,
                "parallelism": spec.parallelism,
                "restartPolicy": pod.restart_policy,
                "command": c.command,
                "args": c.args,
                "env": {e.name: e.value for e in (c.env or [])},
                "seccomp": (
                    c.security_context.seccomp_profile.type
                    if c.security_context and c.security_context.seccomp_profile
                    else None
                ),
            }
        )
    return out


def main():
    if len(sys.argv) != 2:
        fail("usage: k8s-check.py MANIFEST.yaml")
    with open(sys.argv[1]) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        fail("no documents")
    print(json.dumps([check(d, i) for i, d in enumerate(docs)]))


main()
