"""Puts tests/ on the import path: every folder shares tests/controller_helpers.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
