"""Build hook: ship the top-level policies/, playbooks/ and schemas/ inside the wheel.

They stay top-level in the repository (where users and reviewers look for them); the wheel
gets copies under ``supervisor/_data/``, which :mod:`supervisor._defaults` reads when the
package runs from an installed wheel rather than a checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = {"policies": "*.yaml", "playbooks": "*.yaml", "schemas": "*.json"}


class BuildWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for folder, pattern in SHIPPED.items():
            target = Path(self.build_lib) / "supervisor" / "_data" / folder
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted((root / folder).glob(pattern)):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithDefaults})
