"""`modeldeploy status`: the report of a rollout, formatted without a cluster."""

from __future__ import annotations

from modeldeploy.api.models import ModelDeployment
from modeldeploy.rollout.report import format_status, table
from tests.unit.test_rollout_support import PROMETHEUS, SUCCESS_RATE, World, spec_of


def test_table_aligns_columns_without_trailing_blanks() -> None:
    assert table([["A", "BB", ""], ["CCC", "D", "E"]]) == ["A    BB", "CCC  D   E"]


def test_an_automated_rollout_shows_steps_current_step_and_analyses() -> None:
    world = World(
        spec_of(
            steps=[{"weight": 10}, {"analysis": {"count": 3}}, {"weight": 50}, {"pause": {}}],
            analysis={"prometheus": PROMETHEUS, "interval": "30s", "metrics": [SUCCESS_RATE]},
        )
    )
    world.tick()
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.tick(30)
    world.verdict = "Failed"
    world.tick(30)
    md = ModelDeployment(
        metadata={"name": "sentiment", "namespace": "ml"}, spec=world.spec, status=world.status
    )
    stable, canary = world.status.stable_revision, world.status.canary_revision

    assert format_status(md) == "\n".join(
        [
            "ModelDeployment ml/sentiment",
            "Phase:     Progressing  step 2/4: analysis, 2/3 measurements, next at 2025-03-01T12:01:31Z",
            "Strategy:  canary       automated, 4 steps",
            f"Stable:    {stable}   1/1 ready",
            f"Canary:    {canary}   1/1 ready, weight 10% (router reports 10%)",
            "",
            "   STEP  ACTION",
            "   1     weight 10%",
            ">  2     analysis success-rate: 3 x every 30s",
            "   3     weight 50%",
            "   4     pause until resumed",
            "",
            "TIME                  STEP  METRIC        VALUE  VERDICT     MESSAGE",
            "2025-03-01T12:00:31Z  2     success-rate  0.999  Successful  success-rate = 0.999, within min 0.99",
            "2025-03-01T12:01:01Z  2     success-rate  0.9    Failed      success-rate = 0.9, below min 0.99",
            "",
            "CONDITION    STATUS  REASON       MESSAGE",
            "Progressing  True    Progressing  step 2/4: analysis, 2/3 measurements, next at 2025-03-01T12:01:31Z",
            "Degraded     False   Healthy",
            "",
            "REVISION    STABLE SINCE          IMAGE     MODEL",
            f"{stable}  2025-03-01T12:00:00Z  server:1  s3://models/sentiment/v1/",
            "",
        ]
    )


def test_a_manual_canary_shows_its_mode_and_no_step_table() -> None:
    world = World(spec_of(weight=10))
    world.tick()
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.tick(1)
    report = format_status(ModelDeployment(metadata={"name": "s"}, spec=world.spec, status=world.status))
    lines = report.splitlines()
    assert lines[0] == "ModelDeployment default/s"
    assert lines[2] == "Strategy:  canary       manual, weight 10% from spec.rollout.canary.weight"
    assert lines[4].endswith("1/1 ready, weight 10% (router reports 10%)")
    assert "STEP" not in report


def test_a_resource_the_operator_has_not_seen_yet_still_reports() -> None:
    report = format_status(ModelDeployment(metadata={"name": "s", "namespace": "ml"}, spec=spec_of()))
    assert report.splitlines() == [
        "ModelDeployment ml/s",
        "Phase:     Unknown",
        "Strategy:  canary   manual, weight 0% from spec.rollout.canary.weight",
    ]
