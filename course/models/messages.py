"""Short texts for error messages: a readable error summary and a few example keys."""

from __future__ import annotations


def short_error(err: BaseException) -> str:
    """The error's type and the first sentence of its first line.

    Torch's own advice that follows is not for students, and long texts bury the point.
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text.split(". ", 1)[0][:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def few(keys: list[str], n: int = 3) -> str:
    """The first ``n`` keys, then how many more there are."""
    shown = ", ".join(keys[:n])
    return shown + (f", ... {len(keys) - n} more" if len(keys) > n else "")
