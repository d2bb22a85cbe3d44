"""``--demo``: sample data so the UI has something real to show (einstein's home, two projects, shares)."""

from __future__ import annotations

import json

from .host import EmulatorHost

DEMO_PROJECTS = {"cosmology": "_projects/cosmology", "relativity-lab": "_projects/relativity-lab"}

CSV = """year,event,value
1905,photoelectric effect,1
1905,special relativity,2
1915,general relativity,3
1921,nobel prize,4
"""


def _notebook() -> str:
    """A notebook that reads the CSV beside it with the standard library only."""
    cells = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": ["# Welcome to cs3sync\n", "This notebook lives in CS3 storage."],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "import csv\n",
                "with open('data.csv', newline='') as f:\n",
                "    rows = list(csv.DictReader(f))\n",
                "total = sum(int(r['value']) for r in rows)\n",
                "print(len(rows), 'rows, total', total)",
            ],
        },
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"


def seed(emu: EmulatorHost) -> None:
    """Idempotent: existing files are left alone."""
    storage = emu.storage
    config = emu.config
    for user in config.users:
        storage.ensure_home(user)
    storage.ensure_projects()
    home = emu.home("einstein")
    files = {
        f"{home}/welcome.ipynb": _notebook(),
        f"{home}/data.csv": CSV,
        f"{home}/papers/annus-mirabilis.md": "# 1905\n\nFour papers that changed physics.\n",
        f"{home}/shared-with-marie/notes.md": "Notes shared with Marie.\n",
        f"{emu.home('marie')}/radium/measurements.csv": "sample,activity\nA,1.0\nB,2.5\n",
    }
    for name in DEMO_PROJECTS:
        if name in config.projects:
            files[f"{config.project_path(name)}/README.md"] = f"# {name}\n\nA project space.\n"
    for path, text in files.items():
        if not storage.exists(path):
            storage.external_write(path, text.encode(), version=False)
    seed_shares(emu)


def seed_shares(emu: EmulatorHost) -> None:
    """Shares in both directions between einstein and marie (plus a public link), once."""
    from .share_store import ShareStore

    store = ShareStore(emu.storage)
    einstein = emu.config.user("einstein")
    marie = emu.config.user("marie")
    if einstein is None or marie is None or store.has_any():
        return
    store.seed_share(einstein, f"{emu.home('einstein')}/shared-with-marie", marie, editor=True)
    store.seed_share(einstein, f"{emu.home('einstein')}/data.csv", marie, editor=False)
    store.seed_share(marie, f"{emu.home('marie')}/radium", einstein, editor=False)
    store.seed_link(einstein, f"{emu.home('einstein')}/papers")
