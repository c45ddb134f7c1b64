"""The service's memory budget: what one request may ask and what all requests in flight may hold.

Memory is estimated, not measured: pixels (read from the image headers before any pixel is decoded)
times the served model's bytes per pixel (``Predictor.frame_bytes_per_pixel``, from the measured factors of
:mod:`irstd.inference.memory_budget`), plus body bytes times :data:`BODY_FACTOR`. A request is charged before
it decodes anything and pays back each frame's share when the model is done with it (or drops it), so
the estimate follows the frames into the model thread: a request that timed out or whose client left
keeps its frame in the budget while that frame's batch still runs. Every use is on the event loop, so
no lock is needed.
"""

from __future__ import annotations

import math
from typing import Callable

from ..inference.memory_budget import format_bytes

__all__ = ["BODY_FACTOR", "Budget", "BudgetBusy", "BudgetTooLarge", "Hold", "frame_bytes"]

#: Memory per body byte while a request is decoded: the body, the multipart parser's copy of each part
#: and the decoder's buffer.
BODY_FACTOR = 3


def frame_bytes(pixels: int, per_pixel: float) -> int:
    """Estimated peak memory of running a frame of ``pixels`` pixels at ``per_pixel`` bytes each."""
    return int(math.ceil(int(pixels) * per_pixel))


class BudgetTooLarge(Exception):
    """A charge larger than the whole budget: it can never fit (413)."""


class BudgetBusy(Exception):
    """A charge that does not fit beside what is in flight now (503, retry later)."""


class Budget:
    """Estimated bytes held by the requests in flight, at most ``limit``; ``on_idle()`` runs whenever the
    last hold is released (the service hands freed memory back to the system then)."""

    def __init__(self, limit: int, on_idle: Callable[[], None] | None = None) -> None:
        self.limit, self.on_idle = int(limit), on_idle
        self.used = 0
        self.holds = 0  #: holds not yet released

    def check(self, nbytes: int, what: str, whole: int | None = None) -> None:
        """Raise unless ``nbytes`` more fit now: :class:`BudgetTooLarge` if the ``whole`` charge they belong to
        (default ``nbytes``) never can, :class:`BudgetBusy` if they do not beside what is in flight."""
        whole = nbytes if whole is None else whole
        if whole > self.limit:
            raise BudgetTooLarge(f"{what} needs about {format_bytes(whole)}, more than the service's memory budget "
                                 f"of {format_bytes(self.limit)}")
        if self.used + nbytes > self.limit:
            raise BudgetBusy(f"{what} needs about {format_bytes(whole)} and requests in flight hold "
                             f"{format_bytes(self.used)} of {format_bytes(self.limit)}")

    def take(self, nbytes: int, what: str) -> "Hold":
        """Charge ``nbytes`` (or raise, charging nothing); the hold gives them back once."""
        self.check(nbytes, what)
        return Hold(self, nbytes)

    def _give_back(self, nbytes: int) -> None:
        self.used -= nbytes
        self.holds -= 1
        if self.holds == 0 and self.on_idle is not None:
            self.on_idle()


class Hold:
    """Bytes charged to a :class:`Budget`; :meth:`grow` adds to them, :meth:`release` gives all back once."""

    def __init__(self, budget: Budget, nbytes: int) -> None:
        self.budget, self.nbytes, self.released = budget, int(nbytes), False
        budget.used += self.nbytes
        budget.holds += 1

    def grow(self, nbytes: int, what: str) -> None:
        """Charge ``nbytes`` more (a body arriving chunk by chunk), or raise as :meth:`Budget.check`."""
        self.budget.check(nbytes, what, whole=self.nbytes + nbytes)
        self.nbytes += nbytes
        self.budget.used += nbytes

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.budget._give_back(self.nbytes)
