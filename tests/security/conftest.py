"""Attack tests (issue 13). Fixtures come from tests/fixtures/ (loaded by tests/conftest.py); keep this file minimal."""
