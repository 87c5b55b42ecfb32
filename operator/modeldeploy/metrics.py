"""Every metric the operator exports (prometheus-client, default registry).

Defined here only; the controller increments them. Names follow Prometheus conventions:
a `modeldeploy_` prefix, base units, `_total` on counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "modeldeploy_reconciles_total",
    "Reconciliations of ModelDeployments, by result (success, error, retry).",
    ["result"],
)
RECONCILE_DURATION = Histogram(
    "modeldeploy_reconcile_duration_seconds",
    "Time one reconciliation of a ModelDeployment takes, Prometheus queries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_WRITES = Counter(
    "modeldeploy_api_writes_total",
    "Writes to the Kubernetes API, by object kind and verb (apply, patch, delete).",
    ["kind", "verb"],
)
API_READS = Counter(
    "modeldeploy_api_reads_total",
    "Reads of the Kubernetes API made by reconciles, by object kind and verb (get, list); kopf's "
    "watch streams are not counted.",
    ["kind", "verb"],
)
MODEL_DEPLOYMENTS = Gauge(
    "modeldeploy_modeldeployments",
    "ModelDeployments this operator manages, by phase.",
    ["phase"],
)
ROLLOUT_STEP_TRANSITIONS = Counter(
    "modeldeploy_rollout_step_transitions_total",
    "Automated canary steps started (one per StepStarted event).",
)
ANALYSIS_RESULTS = Counter(
    "modeldeploy_analysis_results_total",
    "Analysis metric results, by verdict (Successful, Failed, Inconclusive).",
    ["verdict"],
)
CANARY_WEIGHT = Gauge(
    "modeldeploy_canary_weight",
    "Percentage of requests routed to the canary revision of a ModelDeployment.",
    ["namespace", "name"],
)
ROLLOUTS = Counter(
    "modeldeploy_rollouts_total",
    "Rollouts that ended, by the phase they ended in (Stable when promoted, RolledBack, Failed).",
    ["phase"],
)
