"""Shared fixtures: a real PostgreSQL server for the label-store tests, one torch thread for the
tests that train (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``), the session's
headless Chromium (``chromium``) for the browser tests (tests/browser, tests/docs), and the
``perf`` marker: tests that assert a wall-clock budget run only with ``CRLHF_PERF=1``.

``postgres_url`` is ``$CRLHF_TEST_POSTGRES_URL`` when set; otherwise a throwaway cluster
started from the PostgreSQL binaries (``apt-get install postgresql``) for the test session;
otherwise the PostgreSQL tests skip with the reason printed, or fail when
``CRLHF_TEST_POSTGRES=require`` (CI sets it so that they cannot silently skip).
"""

import os
import shutil

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
    from crlhf.testing import TemporaryPostgres, find_postgres_bindir

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
    except Exception as exc:  # report why, then skip or fail
        server.stop()
        reason = f"could not start a throwaway PostgreSQL cluster: {exc}"
        if required:
            pytest.fail(reason)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    yield url
    server.stop()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BROWSER_LAUNCH_TIMEOUT = 180_000  # ms, under load


def find_chromium() -> str | None:
    """Debian's chromium (``CRLHF_CHROMIUM`` overrides)."""
    for cand in (os.environ.get("CRLHF_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _browser_unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    if find_chromium() is None:
        return "no chromium found (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def chromium():
    """A headless chromium through Playwright, one for the whole session (Playwright's sync API
    allows one instance at a time). Skips with the reason printed when chromium or playwright is
    missing, or fails when ``CRLHF_REQUIRE_BROWSER=1`` (CI sets it)."""
    reason = _browser_unavailable()
    if reason:
        if os.environ.get("CRLHF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CRLHF_REQUIRE_BROWSER=1 but {reason}")
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS,
                                    timeout=BROWSER_LAUNCH_TIMEOUT)
        yield browser
        browser.close()
