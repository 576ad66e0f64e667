"""JupyterLab in chromium: open notebooks/03_annotate.ipynb, run all cells, label three lines
with the keyboard, submit, and find those labels in the store."""

import os
import shutil
import time
from pathlib import Path

import pytest

from crlhf.store import LabelStore

REPO = Path(__file__).resolve().parents[2]
LONG = 180_000  # ms
pytestmark = pytest.mark.browser

READY = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const sc = w && w.sessionContext;
  const k = sc && sc.session && sc.session.kernel;
  if (!sc || !sc.isReady || !k || sc.isRestarting) return null;
  return k.status === 'idle' && k.connectionStatus === 'connected' ? k.id : null;
}"""
NOTEBOOK = "() => window.jupyterapp.shell.currentWidget.content"


def wait_kernel_steady(page, timeout=180):
    """The same idle, connected kernel on two polls 1.5 s apart (NOTES.md: waiting for the idle
    indicator alone dropped "Run All" under load)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = page.evaluate(READY)
        if now is not None and now == last:
            return now
        last = now
        time.sleep(1.5)
    raise TimeoutError("the notebook's kernel never settled")


def test_label_three_lines_with_the_keyboard_in_jupyterlab(chromium, lab_server, tmp_path, shoot):
    shutil.copy(REPO / "notebooks" / "03_annotate.ipynb", lab_server.root / "03_annotate.ipynb")
    db = tmp_path / "annotate.db"
    lab_server.start(CRLHF_ANNOTATE_DB=str(db))
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(LONG)
    try:
        page.goto(f"{lab_server.url}/lab/tree/03_annotate.ipynb?token={lab_server.token}&reset", timeout=LONG)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                               "&& window.jupyterapp.shell.currentWidget.sessionContext", timeout=LONG)
        wait_kernel_steady(page)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # the notebook labels five programs from code; the live session then shows the sixth
        widget = page.locator(".crlhf-line-annotator .crlhf-la[data-program-id='largest']")
        widget.wait_for(timeout=LONG)
        wait_kernel_steady(page)
        widget.scroll_into_view_if_needed()
        n_cells = page.evaluate(f"() => ({NOTEBOOK})().widgets.length")
        widget.locator(".crlhf-la-line[data-line='0'] .crlhf-la-code").click()
        active = page.evaluate(f"() => ({NOTEBOOK})().activeCellIndex")
        for key in ["j", "k", "c", "w", "c"]:  # move down and back, then label lines 0, 1, 2
            page.keyboard.press(key)
        page.wait_for_function(
            """() => { const rows = [...document.querySelectorAll(
                 ".crlhf-la[data-program-id='largest'] .crlhf-la-line")].slice(0, 3);
               return rows.map(r => r.getAttribute('data-label')).join(',') === '1,-1,1'; }""", timeout=LONG)
        # JupyterLab did not act on the keys: the same cells, the same active cell
        assert page.evaluate(f"() => ({NOTEBOOK})().widgets.length") == n_cells
        assert page.evaluate(f"() => ({NOTEBOOK})().activeCellIndex") == active
        assert widget.locator(".crlhf-la-progress-text").inner_text() == "3 / 6 lines labelled"
        if os.environ.get("CRLHF_BROWSER_SHOTS"):
            shoot(page, "lab-labelled")
        page.keyboard.press("Enter")
        page.locator(".crlhf-la[data-program-id='vowels']").wait_for(timeout=LONG)

        store = LabelStore(db, create=False)
        got = store.labels(annotators="you", program_ids=["largest"])
        store.close()
        assert got[["line", "label"]].values.tolist() == [[0, 1], [1, -1], [2, 1]]
    except Exception:
        shoot(page, "lab-failure")
        raise
    finally:
        context.close()
