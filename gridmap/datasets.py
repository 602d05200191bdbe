"""Bundled datasets: a synthetic sample city and a real OpenStreetMap area.

Examples
--------
>>> from gridmap.datasets import available, get_path
>>> "sample" in available()
True
>>> get_path("sample").name
'sample_city.gpkg'
"""

from __future__ import annotations

from pathlib import Path

from gridmap.errors import InputError

__all__ = ["DATASETS", "available", "get_path", "data_dir"]

#: Dataset name → file name in ``data/``.
DATASETS: dict[str, str] = {
    "sample": "sample_city.gpkg",
    "nanjing": "nanjing_xinjiekou.gpkg",
}


def data_dir() -> Path:
    """Return the folder holding the bundled data (``data/`` of the source tree)."""
    return Path(__file__).resolve().parent.parent / "data"


def available() -> list[str]:
    """Return the names of the bundled datasets."""
    return sorted(DATASETS)


def get_path(name: str) -> Path:
    """Return the path of a bundled dataset.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    pathlib.Path
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; bundled datasets are {', '.join(available())}")
    path = data_dir() / DATASETS[name]
    if not path.exists():
        raise InputError(
            f"the bundled dataset {name!r} is not at {path}; gridmap's data/ folder ships with "
            "the source tree — install from a checkout (pip install -e .)"
        )
    return path
