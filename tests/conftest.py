"""Shared test set-up: ``tests/`` is importable (``catalog``, the one
registry of every schedule with reference parameters)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
