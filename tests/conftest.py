"""Shared fixtures: a real PostgreSQL server for the label-store tests, and one torch thread
for the tests that train (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``), and the
``perf`` marker: tests that assert a wall-clock budget run only with ``CRLHF_PERF=1``.

``postgres_url`` is ``$CRLHF_TEST_POSTGRES_URL`` when set; otherwise a throwaway cluster
started from the PostgreSQL binaries (``apt-get install postgresql``) for the test session;
otherwise the PostgreSQL tests skip with the reason printed, or fail when
``CRLHF_TEST_POSTGRES=require`` (CI sets it so that they cannot silently skip).
"""

import os

import pytest

PERF_ENV = "CRLHF_PERF"


def pytest_configure(config):
    config.addinivalue_line("markers", "perf: asserts a wall-clock budget; runs only with CRLHF_PERF=1 "
                                       "(an idle machine), since a loaded one fails it for no fault of the code")


def pytest_collection_modifyitems(config, items):
    if os.environ.get(PERF_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"wall-clock budget: set {PERF_ENV}=1 on an idle machine to run it")
    for item in items:
        if "perf" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (small models train faster so on 2 cores), then restore."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def postgres_url():
    """A SQLAlchemy URL of a PostgreSQL server that tests may create schemas in."""
    url = os.environ.get("CRLHF_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from crlhf.store import TemporaryPostgres, find_postgres_bindir

    required = os.environ.get("CRLHF_TEST_POSTGRES") == "require"
    if find_postgres_bindir() is None:
        reason = "no PostgreSQL server: set CRLHF_TEST_POSTGRES_URL or apt-get install postgresql"
        if required:
            pytest.fail(reason)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    server = TemporaryPostgres(durable=False)
    try:
        url = server.start()
    except Exception as exc:  # noqa: BLE001 - report why, then skip or fail
        server.stop()
        reason = f"could not start a throwaway PostgreSQL cluster: {exc}"
        if required:
            pytest.fail(reason)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    yield url
    server.stop()
