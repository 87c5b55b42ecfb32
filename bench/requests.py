"""Counting a client's API requests by verb.

The API server's request metrics carry no user, so requests are counted from its audit
log, by the user each measured client runs as (bench.cluster.Identities): every write is
logged, and hack/audit-policy.yaml logs the reads of those users too. A cluster created
before that policy logs no reads; then reads are counted by the clients themselves (see
`ReadsSource`) and the results say so.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.cluster.harness import WRITE_VERBS, AuditLog, Kubectl

READ_VERBS = ("get", "list", "watch")


@dataclass
class Requests:
    """One client's requests in one phase."""

    reads: Counter[str] = field(default_factory=Counter)  # by verb
    writes: Counter[str] = field(default_factory=Counter)  # by resource[/subresource]
    failed_writes: int = 0

    def summary(self, objects: int) -> dict[str, Any]:
        return {
            "reads_per_object": _per(sum(self.reads.values()), objects),
            "reads_per_object_by_verb": {verb: _per(self.reads[verb], objects) for verb in READ_VERBS},
            "writes_per_object": _per(sum(self.writes.values()), objects),
            "writes_per_object_by_resource": {
                resource: _per(count, objects) for resource, count in sorted(self.writes.items())
            },
            "failed_writes": self.failed_writes,
        }


def _per(count: int, objects: int) -> float:
    return round(count / objects, 3)


class AuditRequests:
    """One user's requests from the audit log, between two marks of the log."""

    def __init__(self, audit: AuditLog, user: str) -> None:
        self.audit = audit
        self.user = user

    def count(self, start: int, since: float, until: float, with_reads: bool) -> Requests:
        """Requests received in [since, until] (wall clock), reading the log from byte `start`."""
        requests = Requests()
        seen = set()
        for entry in self.audit.entries(start, mentioning=f'"username":"{self.user}"'):
            # A watch is logged when its response starts and again when it ends.
            if entry["user"]["username"] != self.user or entry["auditID"] in seen:
                continue
            if not since <= _received(entry) <= until:
                continue
            seen.add(entry["auditID"])
            verb = entry["verb"]
            if verb in WRITE_VERBS:
                ref = entry.get("objectRef", {})
                resource = "/".join(part for part in (ref.get("resource"), ref.get("subresource")) if part)
                requests.writes[resource] += 1
                if entry.get("responseStatus", {}).get("code", 0) >= 400:
                    requests.failed_writes += 1
            elif with_reads and verb in READ_VERBS:
                requests.reads[verb] += 1
        return requests

    def logs_reads(self, client: Kubectl, timeout: float = 10.0) -> bool:
        """Does this cluster's audit policy log this user's reads? One read to find out."""
        start = self.audit.size()
        client.run("get", "serviceaccounts", "-n", "default", "-o", "name")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.audit.entries(start, mentioning=self.user):
                if entry["user"]["username"] == self.user and entry["verb"] == "list":
                    return True
            time.sleep(0.5)
        return False


def _received(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()


def client_go_read(method: str, url: str) -> str | None:
    """The API verb of a GET client-go logged ("GET https://…/namespaces/ns/pods?watch=true"):
    the API server's own rules (a watch parameter, a named object, or a collection)."""
    if method != "GET":
        return None
    parts = urlsplit(url)
    if parse_qs(parts.query).get("watch", ["false"])[0] in ("true", "1"):
        return "watch"
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments or segments[0] not in ("api", "apis"):
        return "get"  # /version, /healthz: not a resource, one object
    below_version = segments[2:] if segments[0] == "api" else segments[3:]
    if len(below_version) >= 3 and below_version[0] == "namespaces":
        below_version = below_version[2:]
    return "get" if len(below_version) >= 2 else "list"
