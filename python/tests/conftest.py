"""Shared fixtures: a fresh store in a temporary directory for each test."""

from datetime import timedelta

import pytest

import chronokv

# Small memtables make the tests flush to runs (and compact) without writing much.
SMALL = {"memtable_size": 64 << 10, "history_retention": timedelta(days=1)}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def db(path):
    with chronokv.Db(path, **SMALL) as db:
        yield db
