"""Print a hint for an exercise: ``python tools/hint.py 2.1`` (the idea), ``--level 2`` (the
formula), ``--list`` (every exercise that has hints). The hints are in ``tools/hints.py``."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hints import HINTS  # noqa: E402

LEVELS = {1: "idea", 2: "formula"}


def _key(exercise_id: str) -> tuple:
    return tuple(int(part) for part in exercise_id.split("."))


def hint(exercise_id: str, level: int = 1) -> str:
    """The text of one hint; ValueError naming the id or level and what exists."""
    if exercise_id not in HINTS:
        known = ", ".join(sorted(HINTS, key=_key))
        raise ValueError(f"hint: no exercise {exercise_id!r}; exercises with hints: {known}")
    if level not in LEVELS:
        raise ValueError(f"hint: --level must be 1 (the idea) or 2 (the formula), got {level}")
    return HINTS[exercise_id][LEVELS[level]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exercise", nargs="?", help="the exercise id, e.g. 2.1")
    parser.add_argument(
        "--level", type=int, default=1, help="1: the idea (default), 2: the formula"
    )
    parser.add_argument("--list", action="store_true", help="list the exercises with hints")
    args = parser.parse_args(argv)
    if args.list or args.exercise is None:
        print("exercises with hints: " + ", ".join(sorted(HINTS, key=_key)))
        return 0
    try:
        text = hint(args.exercise, args.level)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"Exercise {args.exercise}, hint {args.level} ({LEVELS[args.level]}):")
    for paragraph in text.split("\n"):
        print(textwrap.fill(paragraph, width=96))
    if args.level == 1:
        print(f"Still stuck? python tools/hint.py {args.exercise} --level 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
