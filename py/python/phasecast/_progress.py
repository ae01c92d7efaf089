"""Progress bars for long runs, shown only when someone is watching."""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

#: Seconds a run must last before its bar appears.
DELAY_S = 1.0


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel, unless ``PHASECAST_PROGRESS=0``."""
    env = os.environ.get("PHASECAST_PROGRESS")
    if env is not None:
        return env not in ("0", "", "false", "no")
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def bar(total: float, desc: str, force: Optional[bool] = None) -> Any:
    """A tqdm bar of ``total`` units, or ``None``.

    ``force`` True shows it at once, False never, None when :func:`interactive`
    (and then only once the run has lasted :data:`DELAY_S`).
    """
    if force is False or (force is None and not interactive()):
        return None
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook widget needs it)

        from tqdm.auto import tqdm
    except ImportError:
        try:
            from tqdm.std import tqdm  # type: ignore[no-redef]
        except ImportError:
            return None
    return tqdm(
        total=round(total, 3),
        desc=desc,
        delay=0 if force else DELAY_S,
        unit="ms" if "ms" in desc else "it",
        leave=False,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}]",
    )
