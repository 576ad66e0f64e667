"""crlhf.testing: the throwaway PostgreSQL cluster that the store tests (tests/conftest.py) and
users' own tests run on."""

import os

import pytest

from crlhf.store import LabelStore
from crlhf.testing import TemporaryPostgres, find_postgres_bindir


def test_a_throwaway_cluster_serves_a_store_and_is_removed_after():
    if find_postgres_bindir() is None:
        reason = "no PostgreSQL binaries: apt-get install postgresql"
        if os.environ.get("CRLHF_TEST_POSTGRES") == "require":
            pytest.fail(reason)
        pytest.skip(reason)
    server = TemporaryPostgres(durable=False, port=5433)
    with server as url:
        folder = server.dir
        assert url.startswith("postgresql+psycopg://") and f"host={folder}&port=5433" in url
        assert server.start() == url  # already running: the same server
        with LabelStore(url, schema="mine") as store:
            token = store.register_annotator("ada")
            pid = store.add_program("a = 1\nb = 2\n")
            store.add_labels(token, [(pid, 0, 1), (pid, 1, -1)])
            assert store.labels()["label"].tolist() == [1, -1]
    assert server.url is None and server.dir is None and not folder.exists()
    server.stop()  # a second stop is harmless


def test_missing_binaries_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"initdb, pg_ctl.*apt-get install postgresql"):
        TemporaryPostgres(tmp_path)
