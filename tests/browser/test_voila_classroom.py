"""The Voila classroom in chromium: two students (two browser contexts, two kernels) label the
same program at once; both sets of labels are stored, the dashboard's posterior for that
program reflects both, and a third student cannot take a name already in use."""

import os
import time

import pytest

from crlhf.bayes import expit, logit
from crlhf.store import LabelStore
from widgets.dashboard import CrowdDashboard


LONG = 180_000  # ms
pytestmark = pytest.mark.browser

PROGRAM = "def area(w, h):\n    if w < 0:\n        return 0\n    a = w * h\n    return a\n"  # 5 lines


def open_student(chromium, url, name):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LONG)
    page.goto(url, timeout=LONG)
    page.locator(".crlhf-classroom-name input").fill(name)
    page.locator(".crlhf-classroom-start").click()
    return context, page


def test_two_students_label_the_same_program_at_once(chromium, classroom_server, shoot):
    store = LabelStore(classroom_server.db)
    store.add_programs([{"program_id": "p0", "program": PROGRAM}, {"program_id": "p1", "program": "x = 1\n"}])
    classroom_server.start("--token", "class-token", "--n-gold", "0")
    url = f"{classroom_server.url}/?token=class-token"
    contexts = []
    try:
        students = {}
        for name in ("alice", "bob"):
            context, page = open_student(chromium, url, name)
            contexts.append(context)
            students[name] = page
        for page in students.values():  # both see p0 before either submits
            page.locator(".crlhf-la[data-program-id='p0']").wait_for(timeout=LONG)
        keys = {"alice": ["c", "c", "w", "c", "c"], "bob": ["c", "w", "w", "c", "w"]}
        for name, page in students.items():
            page.locator(".crlhf-la-line[data-line='0'] .crlhf-la-code").click()
            for key in keys[name]:
                page.keyboard.press(key)
        for name, page in students.items():
            expect = ",".join({"c": "1", "w": "-1"}[k] for k in keys[name])
            page.wait_for_function(f"""() => [...document.querySelectorAll('.crlhf-la-line')]
                .map(r => r.getAttribute('data-label')).join(',') === '{expect}'""", timeout=LONG)
        if os.environ.get("CRLHF_BROWSER_SHOTS"):
            shoot(students["bob"], "voila-bob")
        for page in students.values():  # submit both, one right after the other
            page.keyboard.press("Enter")
        for page in students.values():
            page.locator(".crlhf-la[data-program-id='p1']").wait_for(timeout=LONG)

        labels = store.labels(program_ids=["p0"])
        for name in ("alice", "bob"):
            mine = labels[labels.annotator == name].sort_values("line")
            assert mine.label.tolist() == [{"c": 1, "w": -1}[k] for k in keys[name]], name

        dash = CrowdDashboard(store, autostart=False)
        frame = dash.posteriors_of("p0")
        assert frame["alice"].tolist() == [1, 1, -1, 1, 1] and frame["bob"].tolist() == [1, -1, -1, 1, -1]
        w = float(logit(0.7))  # both at nu when p0 was ingested: the posterior adds both votes
        expect = [float(expit(w * (a + b))) for a, b in zip(frame["alice"], frame["bob"], strict=True)]
        assert frame["posterior"].tolist() == pytest.approx(expect)
        assert "alice" in dash.heatmap.value and "bob" in dash.heatmap.value

        context, page = open_student(chromium, url, "alice")  # a third student tries alice's name
        contexts.append(context)
        page.locator(".crlhf-classroom-status").get_by_text("is taken").wait_for(timeout=LONG)
        assert page.locator(".crlhf-la").count() == 0
        time.sleep(0.5)
        assert set(store.labels()["annotator"]) == {"alice", "bob"}
        assert store.annotators()["annotator"].tolist() == ["alice", "bob"]
    except Exception:
        for i, context in enumerate(contexts):
            for page in context.pages:
                shoot(page, f"voila-failure-{i}")
        raise
    finally:
        for context in contexts:
            context.close()
        store.close()
