"""The operator's only door to the API server: server-side apply under one field manager.

Every write goes through `Kube.apply`, which first compares what we would apply with
what is there (`diff.needs_apply`) and writes only when they differ, so a resync of an
unchanged cluster makes zero writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, ContentTypeError
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError

from modeldeploy import metrics
from modeldeploy.controller.diff import FIELD_MANAGER, edited_by_others, needs_apply

USER_AGENT = "modeldeploy-operator"
# A kind the cluster does not serve is looked up again at most this often (a CRD may be installed later).
REDISCOVERY_SECONDS = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    obj: dict[str, Any]
    written: bool
    restored: bool  # it existed and had drifted from what we apply (edited by hand)


class KindNotServed(Exception):
    """The API server does not serve this kind: its CRD is not installed."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"{kind}.{api_version} is not served by the cluster")
        self.api_version = api_version
        self.kind = kind


class Kube:
    def __init__(self, api: client.ApiClient, dynamic: DynamicClient) -> None:
        self.api = api
        self.dynamic = dynamic
        self._missing_kinds: dict[tuple[str, str], float] = {}
        self._served: dict[tuple[str, str], Any] = {}
        # Lookups one at a time: the dynamic client answers a kind it has not seen yet by
        # discovering every API group, and the reconciles that start together after a restart
        # would each do so (some 450 requests per start with 16 workers, bench/).
        self._discovering = asyncio.Lock()

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster config when running in a pod, else the usual kubeconfig."""
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
            config.load_incluster_config()
            api = client.ApiClient()
        else:
            api = await config.new_client_from_config(config_file=kubeconfig)
        api.user_agent = USER_AGENT
        _without_netrc_lookups(api)
        cache = os.path.join(tempfile.mkdtemp(prefix="modeldeploy-"), "discovery.json")
        dynamic = await DynamicClient(api, cache_file=cache)
        return cls(api, dynamic)

    async def close(self) -> None:
        await self.api.close()

    async def resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        served = self._served.get(key)
        if served is not None:
            return served
        async with self._discovering:
            if key not in self._served:
                self._served[key] = await self._discover(api_version, kind)
            return self._served[key]

    async def _discover(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        missing_since = self._missing_kinds.get(key)
        if missing_since is not None:
            if time.monotonic() - missing_since < REDISCOVERY_SECONDS:
                raise KindNotServed(api_version, kind)
            await self.dynamic.resources.invalidate_cache()
        try:
            found = await self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self._missing_kinds[key] = time.monotonic()
            raise KindNotServed(api_version, kind) from None
        self._missing_kinds.pop(key, None)
        return found

    def _gone(self, api_version: str, kind: str) -> KindNotServed:
        """A kind discovery knew but the server no longer serves: looked up again later."""
        self._served.pop((api_version, kind), None)
        self._missing_kinds[(api_version, kind)] = time.monotonic()
        return KindNotServed(api_version, kind)

    async def _request(self, method: str, resource: Any, **arguments: Any) -> dict[str, Any]:
        """One call of the dynamic client, failures raised: it streams responses without
        checking their status, so a 404 or 422 would come back as a plain `Status` object.
        The JSON is taken as it is: wrapping it in ResourceInstance and back with to_dict()
        cost a tenth of the operator's CPU with 1000 ModelDeployments."""
        try:
            response = await getattr(self.dynamic, method)(resource, serialize=False, **arguments)
            result = dict(await response.json())
        except ContentTypeError as error:
            # Not a Status: a plain-text answer, such as the 404 for a CRD deleted a moment ago.
            raise ApiException(status=error.status, reason=error.message) from None
        if result.get("kind") == "Status" and result.get("status") == "Failure":
            error = ApiException(status=result.get("code"), reason=result.get("reason"))
            error.body = json.dumps(result)
            raise error
        return result

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        resource = await self.resource(api_version, kind)
        metrics.API_READS.labels(kind=kind, verb="get").inc()
        try:
            return await self._request("get", resource, name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def list(self, api_version: str, kind: str, namespace: str, selector: dict[str, str]) -> list[dict]:
        resource = await self.resource(api_version, kind)
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        metrics.API_READS.labels(kind=kind, verb="list").inc()
        try:
            found = await self._request("get", resource, namespace=namespace, label_selector=label_selector)
        except ApiException as error:
            if error.status == 404:
                raise self._gone(api_version, kind) from None
            raise
        # A list's items carry no apiVersion and kind of their own; callers tell children apart by them.
        return [
            {"apiVersion": found["apiVersion"], "kind": kind, **item} for item in found.get("items") or []
        ]

    async def apply(self, desired: dict[str, Any], live: dict[str, Any] | None) -> ApplyResult:
        """Server-side apply `desired` unless `live` (what the cluster has, or None) already matches it."""
        if live is not None and not needs_apply(desired, live, FIELD_MANAGER):
            return ApplyResult(live, written=False, restored=False)
        resource = await self.resource(desired["apiVersion"], desired["kind"])
        try:
            applied = await self._request(
                "server_side_apply",
                resource,
                body=desired,
                namespace=desired["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            if error.status == 404:
                # Apply creates what is missing, so a 404 means the kind itself went away (CRD deleted).
                raise self._gone(desired["apiVersion"], desired["kind"]) from None
            raise
        metrics.API_WRITES.labels(kind=desired["kind"], verb="apply").inc()
        restored = live is not None and edited_by_others(desired, live, FIELD_MANAGER)
        return ApplyResult(applied, written=True, restored=restored)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._write("create", obj)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the object's resourceVersion: a concurrent change makes it fail with 409."""
        return await self._write("replace", obj)

    async def _write(self, verb: str, obj: dict[str, Any]) -> dict[str, Any]:
        resource = await self.resource(obj["apiVersion"], obj["kind"])
        written = await self._request(verb, resource, body=obj, namespace=obj["metadata"].get("namespace"))
        metrics.API_WRITES.labels(kind=obj["kind"], verb=verb).inc()
        return written

    async def delete(self, obj: dict[str, Any]) -> bool:
        resource = await self.resource(obj["apiVersion"], obj["kind"])
        try:
            await self._request(
                "delete",
                resource,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                propagation_policy="Background",
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        metrics.API_WRITES.labels(kind=obj["kind"], verb="delete").inc()
        return True

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict
    ) -> dict[str, Any]:
        """JSON merge patch of the status subresource: the operator never writes spec.
        Returns the object as it is now."""
        resource = await self.resource(api_version, kind)
        written = await self._request(
            "patch",
            resource.subresources["status"],
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )
        metrics.API_WRITES.labels(kind=kind, verb="status").inc()
        return written

    async def delete_all(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        deleted = []
        for obj in objects:
            try:
                if await self.delete(obj):
                    deleted.append(obj)
            except ApiException as error:
                log.warning("could not delete %s/%s: %s", obj["kind"], obj["metadata"]["name"], error.reason)
        return deleted


def _without_netrc_lookups(api: client.ApiClient) -> None:
    """kubernetes_asyncio's HTTP session trusts the environment, so aiohttp looks for a ~/.netrc
    entry, in a thread, before every request: a tenth of the operator's CPU with 1,000
    ModelDeployments (bench/). Credentials come from the kubeconfig or the ServiceAccount,
    never from netrc; the session that trusts the environment is kept only when a proxy is
    configured there, as that is the other thing it reads."""
    if urllib.request.getproxies():
        return
    trusting = api.rest_client.pool_manager
    # The read buffer kubernetes_asyncio chooses: a list of large objects outgrows aiohttp's default.
    api.rest_client.pool_manager = ClientSession(connector=trusting.connector, read_bufsize=2**21)
    trusting.detach()
