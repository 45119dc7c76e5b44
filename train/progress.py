"""Progress bars (tqdm) that stay quiet when disabled or when output is not a terminal."""
from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, enabled: bool = True, **kwargs) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar on stderr; ``enabled=False`` returns ``items`` unchanged.

    On a non-terminal stderr (CI logs) tqdm still prints, but at most every 10 s."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=True, dynamic_ncols=True, mininterval=0.5,
                maxinterval=10.0, **kwargs)
