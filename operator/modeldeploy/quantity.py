"""Kubernetes resource quantities ("500m", "8Gi", "1e3") as exact decimals.

kubernetes_asyncio does not ship the sync client's parser; the operator needs only this:
compare what it applies with what the API server normalised it to, and count GPUs.
"""

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")
_MULTIPLIERS = {
    **{
        suffix: Decimal(2) ** (10 * power)
        for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)
    },
    **{
        suffix: Decimal(10) ** exponent
        for suffix, exponent in (
            ("n", -9),
            ("u", -6),
            ("m", -3),
            ("", 0),
            ("k", 3),
            ("M", 6),
            ("G", 9),
            ("T", 12),
            ("P", 15),
            ("E", 18),
        )
    },
}


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value; ValueError when it is not a quantity."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = match.groups()
    try:
        return Decimal(number) * _MULTIPLIERS[suffix]
    except InvalidOperation:
        raise ValueError(f"not a quantity: {value!r}") from None
