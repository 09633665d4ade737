"""Benchmarks of image delivery through the caches (``python -m benchmarks.run``); not part of the test run."""
from pathlib import Path

#: The project's checkout.
ROOT = Path(__file__).resolve().parent.parent
