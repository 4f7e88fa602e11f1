"""Field checks shared by the config dataclasses (``GPTConfig``, ``CharLSTMConfig``,
``BERTConfig``, ``TrainConfig``): each raises a one-line ``ValueError`` naming the config, the
field, what was expected and the value it got."""

from __future__ import annotations


def check_positive_sizes(owner: str, minimum: int = 1, **sizes) -> None:
    """Arguments that count something (``hidden_size=0`` is a mistake, not a layer); ``owner``
    names the class they are for. A bool is not a count. ``minimum=0`` allows empty sizes."""
    for name, n in sizes.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"{owner}: {name} must be {what}, got {n!r}")


def check_positive_ints(config, *names: str) -> None:
    """Every field in ``names`` is an int >= 1."""
    check_positive_sizes(type(config).__name__, **{name: getattr(config, name) for name in names})


def check_nonnegative_int(config, name: str) -> None:
    """The field ``name`` is an int >= 0."""
    value = getattr(config, name)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{type(config).__name__}: {name} must be an integer >= 0, got {value!r}")


def check_dropout(config, name: str = "dropout") -> None:
    """The field ``name`` is a dropout probability, in [0, 1)."""
    value = getattr(config, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{type(config).__name__}: {name} must be in [0, 1), got {value}")
