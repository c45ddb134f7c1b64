"""Progress bars that show on a terminal only: logs, pipes and CI output get none."""

from __future__ import annotations

from typing import Any, Iterable, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress_bar"]

T = TypeVar("T")


def progress_bar(iterable: Iterable[T], *, enabled: bool = True, **kwargs: Any) -> "tqdm[T]":
    """``tqdm(iterable)`` that draws only when ``enabled`` and stderr is a terminal
    (tqdm's ``disable=None``), so redirected output never fills with bar redraws."""
    return tqdm(iterable, disable=None if enabled else True, dynamic_ncols=True, **kwargs)
