"""The chaos suite: fault injection on the real stack (see conftest.py)."""
