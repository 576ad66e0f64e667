"""The documentation site (docs/): built with ``sphinx-build -W --keep-going`` as the README says,
checked page by page, and opened in the real Chromium the browser tests use.

Without the docs tools (``pip install -e ".[docs]"``) the tests skip with the reason printed, or
fail when ``CRLHF_REQUIRE_DOCS=1`` (CI sets it). Screenshots go to ``test-artifacts/docs/`` (or
``$CRLHF_BROWSER_SHOTS``).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SHOTS = Path(os.environ.get("CRLHF_BROWSER_SHOTS") or REPO / "test-artifacts" / "docs")
DOCS_TOOLS = ("sphinx", "myst_nb", "pydata_sphinx_theme", "sphinx-mathjax-offline")
API_MODULES = ("crlhf.bayes", "crlhf.crowd", "crlhf.reward", "crlhf.loop", "crlhf.store", "crlhf.store.schema",
               "crlhf.testing", "crlhf.ppo", "crlhf.policy", "crlhf.passk", "crlhf.sandbox", "crlhf.tasks.base",
               "widgets.annotator", "widgets.dashboard")
PAGES = ("index", "getting-started", "method", "tutorials", "howto/index", "howto/classroom",
         "howto/gpu-experiment", "howto/own-tasks", "howto/export-labels", "api", "benchmarks")


def _missing_tools() -> list[str]:
    return [m for m in DOCS_TOOLS if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The HTML site, built once for this module from the checkout's docs/."""
    missing = _missing_tools()
    if missing:
        reason = f"the docs tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        if os.environ.get("CRLHF_REQUIRE_DOCS") == "1":
            pytest.fail(f"CRLHF_REQUIRE_DOCS=1 but {reason}")
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("docs")
    out = root / "html"
    # no network: a proxy that refuses every connection turns any fetch into a build warning
    dead = "http://127.0.0.1:9"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead,
               no_proxy="", NO_PROXY="")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(root / "doctrees"),
           str(DOCS), str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (f"sphinx-build failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return out


class _Tags(HTMLParser):
    """Every (tag, attributes) of a page, and its text outside <script>/<style>."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(path: Path) -> _Tags:
    p = _Tags()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def text(path: Path) -> str:
    """The page's text, whitespace collapsed and Sphinx's curly apostrophes made straight."""
    return " ".join("".join(parse(path).text).replace("\u2019", "'").split())


def png_outputs(notebook: Path) -> int:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell.get("outputs", []))


def test_every_page_is_built(site):
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page
    for module in API_MODULES:
        assert (site / "api" / f"{module}.html").is_file(), module
    index = text(site / "index.html")
    for title in ("Getting started", "The method", "Tutorials", "How-to guides", "API reference", "Benchmark results"):
        assert title in index


def test_every_notebook_is_a_tutorial_page_with_its_plots(site):
    assert NOTEBOOKS, "no notebooks found"
    tutorials = parse(site / "tutorials.html")
    linked = {a.get("href", "") for tag, a in tutorials.tags if tag == "a"}
    for nb in NOTEBOOKS:
        page = site / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), f"{nb.name} has no tutorial page"
        assert f"notebooks/{nb.stem}.html" in linked, f"{nb.name} is not in the tutorials' table of contents"
        tags = parse(page)
        first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"]
        title = "".join(first).splitlines()[0].lstrip("# ").strip()
        assert title in " ".join("".join(tags.text).split()), (nb.name, title)
        # the committed PNG outputs, every one shown and copied with the site
        imgs = [a["src"] for tag, a in tags.tags if tag == "img" and a.get("src", "").endswith(".png")]
        assert len(imgs) == png_outputs(nb), (nb.name, imgs)
        for src in imgs:
            assert (page.parent / src).resolve().is_file(), (nb.name, src)


def test_method_and_benchmark_pages_carry_their_content(site):
    method = (site / "method.html").read_text(encoding="utf-8")
    for eq in ("eqs (1)-(5)", "eqs (6)-(7)", "eq (8)", r"\operatorname{logit}(p_i) + \lambda\, \mu"):
        assert eq in method, eq
    results = (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    bench = text(site / "benchmarks.html")
    headings = [" ".join(line.lstrip("# ").replace("`", "").split()) for line in results.splitlines()
                if line.startswith("## ")]
    assert headings
    for h in headings:
        assert h in bench, h


def test_api_pages_render_the_docstrings(site):
    crowd = parse(site / "api" / "crlhf.crowd.html")
    ids = {a.get("id") for _, a in crowd.tags}
    assert {"crlhf.crowd.CrowdModel", "crlhf.crowd.CrowdModel.ingest"} <= ids
    # the modules split out of crlhf.crowd have pages of their own
    replay = {a.get("id") for _, a in parse(site / "api" / "crlhf.replay.html").tags}
    assert {"crlhf.replay.replay_log", "crlhf.replay.IncrementalReplay"} <= replay
    views = {a.get("id") for _, a in parse(site / "api" / "crlhf.crowd_views.html").tags}
    assert {"crlhf.crowd_views.threshold_curve", "crlhf.crowd_views.annotator_summary"} <= views
    # the store package documents LabelStore where the docs link it (crlhf.store.LabelStore)
    store = {a.get("id") for _, a in parse(site / "api" / "crlhf.store.html").tags}
    assert {"crlhf.store.LabelStore", "crlhf.store.LabelStore.next_program"} <= store
    # reST roles and literals became links and code, never raw markup; no docstring's stray
    # indentation became a quotation
    for page in sorted((site / "api").glob("*.html")):
        shown = text(page)
        for raw in (":class:`", ":meth:`", ":func:`", ":data:`", ":mod:`", "``"):
            assert raw not in shown, (page.name, raw)
        assert "<blockquote" not in page.read_text(encoding="utf-8"), \
            f"{page.name}: an indented block in a docstring renders as a quotation (use '::' for code)"
    # a command's usage block is code, its options keep their two hyphens
    usage = parse(site / "api" / "crlhf.round_cmd.html")
    assert any(tag == "div" and "highlight-text" in a.get("class", "") for tag, a in usage.tags)
    assert "crlhf round --db DB --model" in text(site / "api" / "crlhf.round_cmd.html")
    # the kit's "name : description" argument lists render as parameters with the hints' types
    loop = (site / "api" / "crlhf.loop.html").read_text(encoding="utf-8")
    start = loop.index('id="crlhf.loop.LoopConfig"')
    section = loop[start:loop.index('id="crlhf.loop.LoopConfig.', start)]
    assert "Parameters" in section
    for name in ("rounds", "prompts_per_round", "reward_shape", "store_timeout"):
        assert f"<strong>{name}</strong>" in section, name


LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "video": "src",
           "audio": "src", "embed": "src", "object": "data", "track": "src"}


def test_no_page_loads_anything_from_another_host(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 30
    for page in pages:
        for tag, attrs in parse(page).tags:
            url = attrs.get(LOADING.get(tag, ""), "") or ""
            if tag == "link" and attrs.get("rel") in ("canonical",):
                continue
            assert not (urlparse(url).scheme in ("http", "https") or url.startswith("//")), (page, tag, url)
    # the maths renders with the MathJax copy served from _static
    method = parse(site / "method.html")
    scripts = [a["src"] for tag, a in method.tags if tag == "script" and "mathjax" in a.get("src", "")]
    assert scripts == ["_static/mathjax/tex-chtml.js"]
    assert (site / scripts[0]).is_file()


@pytest.fixture
def served(site):
    """The site over HTTP on 127.0.0.1 (as a reader's browser gets it), for the test's duration."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_home_tutorial_and_api_pages_in_chromium(served, chromium):
    host = urlparse(served).netloc
    context = chromium.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def local_only(route):
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            problems.append(f"external request: {route.request.url}")
            route.abort()

    page.route("**/*", local_only)
    SHOTS.mkdir(parents=True, exist_ok=True)

    def visit(path: str, name: str, full_page: bool = False):
        page.goto(f"{served}/{path}", wait_until="load", timeout=120_000)
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)
        return lambda: page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page, timeout=60_000)

    try:
        shot = visit("index.html", "home")
        page.wait_for_selector("mjx-container", timeout=60_000)   # $p_i$ typeset by the local MathJax
        nav = page.locator("a.nav-link.nav-internal").all_inner_texts()
        assert [t.strip() for t in nav][:6] == ["Getting started", "The method", "Tutorials", "How-to guides",
                                                 "API reference", "Benchmark results"], nav
        shot()

        tutorial = "02_crowd_simulation"
        shot = visit(f"notebooks/{tutorial}.html", "tutorial", full_page=True)
        plots = page.locator(".cell_output img")
        assert plots.count() == png_outputs(REPO / "notebooks" / f"{tutorial}.ipynb") > 0
        for i in range(plots.count()):
            size = plots.nth(i).evaluate("i => [i.naturalWidth, i.naturalHeight]")
            assert min(size) > 100, size   # a decoded matplotlib figure, not a broken image
        shot()

        shot = visit("api/crlhf.crowd.html", "api")
        card = page.locator('dt[id="crlhf.crowd.CrowdModel"]')
        assert card.is_visible()
        roles = page.locator("article code.xref")
        linked = page.locator("article a.reference.internal code.xref")
        assert roles.count() > 5 and linked.count() == roles.count()   # every :class:/:func:/:mod: role became a link
        shot()
        print(f"screenshots: {SHOTS}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
