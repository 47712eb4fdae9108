"""Print the id of the model that the current config, domain, data and engine code make.

The Makefile names the trained model ``models/kefu-<id>.tar.gz`` and trains only when no
model of that id exists: retraining happens exactly when something it learns from changed.
Standard library only (runs with any Python 3).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ("config.yml", "domain.yml", "data", "engine", "requirements/engine.lock")


def model_id(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


if __name__ == "__main__":
    sys.stdout.write(model_id() + "\n")
