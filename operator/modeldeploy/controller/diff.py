"""The controller's door to the one comparison: whether applying a child would change it.

The comparison itself lives in `modeldeploy.compare`, a pure module, so that the traffic
routers' read-back (pure code) uses the very same function as `Kube.apply`; two comparators
drift apart, and a second one once let a removed mirror filter stay on a route (issue 15).
"""

from __future__ import annotations

from modeldeploy.compare import FIELD_MANAGER, edited_by_others, needs_apply

__all__ = ["FIELD_MANAGER", "edited_by_others", "needs_apply"]
