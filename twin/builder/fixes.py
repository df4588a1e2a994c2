"""What a build had to fix in its inputs, said where the user sees it: features skipped
(no geometry, not a polygon, zero area), footprints repaired (``make_valid``) and building
heights or levels refused as implausible (replaced by the next height source). Kept in
twin.json's report, printed in the build summary, and fatal under ``twin build --strict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per kind of fix in a manifest `report` (none when the inputs needed none)."""
    lines = []
    for layer, reasons in sorted(report.get("skipped", {}).items()):
        lines.append(f"{layer}: {_counts(reasons)} skipped or set aside ({_reasons(reasons)})")
    for layer, count in sorted(report.get("repaired", {}).items()):
        lines.append(f"{layer}: {count} invalid footprint(s) repaired (make_valid)")
    refused = report.get("heights_refused", {})
    for field, reasons in sorted(refused.items()):
        lines.append(
            f"buildings: {_counts(reasons)} {field} value(s) refused ({_reasons(reasons)}); "
            "the next height source was used"
        )
    return lines


def fix_count(report: Mapping[str, Any]) -> int:
    """How many fixes `report` holds (0: the inputs were used as given)."""
    skipped = sum(_counts(reasons) for reasons in report.get("skipped", {}).values())
    refused = sum(_counts(reasons) for reasons in report.get("heights_refused", {}).values())
    return skipped + sum(report.get("repaired", {}).values()) + refused


def _counts(reasons: Mapping[str, int]) -> int:
    return sum(reasons.values())


def _reasons(reasons: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
