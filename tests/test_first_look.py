"""What a newcomer meets first (issue 14): the run the page opens, how runs still being built are
marked, the tab it opens on, and what an unknown ``view=`` gives. Pure functions and the shell's
callbacks called as functions, on copies of the small synthetic and parenthesis-language runs."""

from __future__ import annotations

import json
import re

import dash
import numpy as np
import pytest

from factories import first_launch_runs
from dashboard import data, layout, state
from dashboard.app import create_app
from pipeline import runformat


@pytest.fixture(scope="module")
def first_launch(tmp_path_factory, synthetic_runs_dir, text_runs_dir):
    """A complete synthetic run beside a text run being built (the newest; its writer alive)."""
    return first_launch_runs(tmp_path_factory.mktemp("first-launch") / "runs", synthetic_runs_dir,
                             text_runs_dir)


@pytest.fixture
def in_folder(first_launch):
    previous = data.runs_dir()
    data.configure(first_launch)
    yield first_launch
    data.configure(previous)


def manifest(run_id="r", kind=runformat.CLASSIFICATION, status="complete", stages=None):
    return runformat.parse_manifest({"schema_version": runformat.SCHEMA_VERSION, "run_id": run_id,
                                     "kind": kind, "status": status, "stages": stages or {}})


def find(component, component_id):
    """The component with ``component_id`` in a layout."""
    stack = [component]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
        elif getattr(node, "id", None) == component_id:
            return node
        elif getattr(node, "children", None) is not None and not isinstance(node.children, str):
            stack.append(node.children)
    raise KeyError(component_id)


def shell_params():
    return layout.all_params()


def sync(app):
    for key, entry in app.callback_map.items():
        if key.startswith("..url.search"):
            return entry["callback"].__wrapped__
    raise KeyError("url sync")


def test_fl001_the_default_run_is_the_newest_complete_classifier():
    newest_first = [manifest("text", runformat.LANGUAGE_MODEL, "incomplete"),
                    manifest("live", status="training"), manifest("text-done", runformat.LANGUAGE_MODEL),
                    manifest("auslan"), manifest("synthetic")]
    assert data.default_run(newest_first) == "auslan"
    assert data.default_run(newest_first[:3]) == "text-done"          # no classifier: any complete run
    assert data.default_run(newest_first[:2]) is None                 # never one being built or training
    assert data.default_run([]) is None


def test_fl002_the_picker_marks_a_run_being_built_and_the_page_opens_the_complete_one(in_folder):
    runs = data.list_runs()
    assert [m.run_id for m in runs] == ["text-parens", "synthetic"]   # the one being built is newest
    labels = {o["value"]: o["label"] for o in layout.run_choices(runs)}
    assert "being built: data done" in labels["text-parens"]
    assert "being built" not in labels["synthetic"]
    page = layout.shell()
    assert find(page, state.RUN).value == "synthetic"
    assert find(page, state.TABS).value == "paths"


def test_fl003_a_build_whose_writer_is_gone_says_it_stopped(in_folder):
    building = next(m for m in data.list_runs() if m.run_id == "text-parens")
    lock = in_folder / "text-parens" / runformat.LOCK_FILE
    saved = lock.read_text()
    try:
        lock.write_text(json.dumps({**json.loads(saved), "pid": 2 ** 22 + 12345}))     # no such process
        assert data.build_state(building) == "build stopped after data"
        lock.unlink()
        assert data.build_state(building) == "build stopped after data"
    finally:
        lock.write_text(saved)
    assert data.build_state(building) == "being built: data done"
    assert data.build_state(manifest(status="incomplete")) == "build stopped"
    assert data.build_state(manifest()) == ""


def test_fl004_with_nothing_complete_no_run_is_chosen_and_the_page_says_why(tmp_path, text_runs_dir):
    (tmp_path / "nothing").mkdir()
    runs = first_launch_runs(tmp_path / "runs", tmp_path / "nothing", text_runs_dir)
    previous = data.runs_dir()
    data.configure(runs)
    try:
        assert data.default_run(data.list_runs()) is None
        facts = dict(zip(layout.RUN_FACTS, layout.run_facts(None)))
        assert "No run is complete yet: text-parens (being built: data done)" in facts["message"]
    finally:
        data.configure(previous)


def test_fl005_an_unknown_view_falls_back_to_the_runs_first_view(in_folder, text_runs_dir):
    assert layout.view_for("synthetic", "no-such-view") == "paths"
    assert layout.view_for("synthetic", "paths") is None
    assert layout.view_for("synthetic", "text") == "paths"               # a text view on a classifier
    assert layout.view_for("text-parens", "no-such-view") == "paths"     # unreadable (being built)
    assert layout.view_for("text-parens", "inspector") is None           # a known tab shows why


def test_fl006_the_url_sync_opens_a_tab_the_run_has(in_folder):
    app = create_app(in_folder)
    params = shell_params()
    ids = [p.component_id for p in params]
    values = [p.default for p in params]
    values[ids.index(state.RUN)] = "synthetic"
    out = sync(app)("?view=bogus", *values, False)
    assert out[1 + ids.index(state.TABS)] == "paths"
    # A URL naming a text view for the classifier: its first view instead
    values[ids.index(state.TABS)] = "paths"
    out = sync(app)("?view=match", *values, False)
    assert out[1 + ids.index(state.TABS)] == "paths"


PYTHON_WINDOW = 'def f(x):\n    d = {"a": {1, 2}, **x}\n    return f"{d!r} {{x}}"\n'


def test_fl007_text_with_braces_reaches_the_page_as_text():
    """dcc.Markdown parses raw HTML as JSX, where braces are expressions: they go as entities."""
    from html.parser import HTMLParser

    from dashboard.figures import text as figures

    class Text(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.spans = ""

        def handle_data(self, chunk):
            self.spans += chunk

    chars = list(PYTHON_WINDOW)
    markup = figures.heatmap_html(chars, np.linspace(-1, 1, len(chars)), 1.0, first_row=0,
                                  document_starts={0: "module {x}"})
    assert "{" not in markup and "}" not in markup
    parsed = Text()
    parsed.feed(markup)
    assert parsed.spans == "module {x}" + PYTHON_WINDOW
    match = figures.match_html([{"rank": 1, "name": "doc {1}", "start": 0, "end": 3, "overlap": 1, "extra": 0,
                                 "length": 4, "rows": list(range(6)), "chars": list("{a: }}"),
                                 "counts": [1] * 6}])
    assert "{" not in match and "}" not in match


def facts_of(run_id):
    return dict(zip(layout.RUN_FACTS, layout.run_facts(run_id)))


def test_fl008_a_run_shows_the_controls_its_kind_uses(text_runs_dir, synthetic_runs_dir, in_folder):
    hidden = {"display": "none"}
    classifier_only = ("class_style", "correct_style", "inspect_style", "download_style")
    data.configure(text_runs_dir)
    text = facts_of("text-parens")
    assert all(text[key] == hidden for key in classifier_only)
    assert "classes" not in text["summary"] and "documents" in text["summary"]
    page = layout.shell()                         # the page's first paint already fits the run it opens
    assert find(page, layout.CLASS_BOX).style == hidden
    data.configure(synthetic_runs_dir)
    synthetic = facts_of("synthetic")
    assert all(synthetic[key] is None for key in classifier_only)
    assert find(layout.shell(), layout.CLASS_BOX).style is None
    data.configure(in_folder)
    building = facts_of("text-parens")              # cannot be read: the message, no classifier controls
    assert "incomplete" in building["message"]
    assert all(building[key] == hidden for key in classifier_only)


@pytest.fixture
def app_module():
    """``app.py`` imported (it makes an app on its default runs folder: the setting is restored)."""
    previous = data.runs_dir()
    import app
    yield app
    data.configure(previous)


def test_fl009_the_background_text_run_says_what_it_writes_and_where(app_module, tmp_path, capsys,
                                                                       monkeypatch):
    started = []
    monkeypatch.setattr(app_module.subprocess, "Popen", lambda args, **kw: started.append(args))
    app_module.start_background_runs(str(tmp_path))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and started and started[0][3:5] == ["run", "text"]
    assert re.search(rf"about \d+(\.\d)? (GB|MB) into {re.escape(str(tmp_path / 'text-python'))} "
                     rf"\(h, c and 4 gates at each of [\d,]+ characters, 128 cells\)", lines[0]), lines[0]
    assert str(tmp_path / "text-build.log") in lines[0]
    # the estimate: every step's six tensors, about 3.2 stored bytes a value
    assert app_module.estimated_run_bytes(1000, [128]) == pytest.approx(1000 * 128 * 6 * 3.2)
    assert [app_module.human_bytes(n) for n in (875e6, 2.5e9, 42e6, 900)] == ["0.9 GB", "2.5 GB", "42 MB",
                                                                              "0.9 kB"]


def test_fd001_the_finder_selects_an_example_or_adds_a_sign(synthetic_runs_dir, text_runs_dir):
    previous = data.runs_dir()
    keep = dash.no_update
    try:
        data.configure(synthetic_runs_dir)
        run = data.get_run("synthetic")
        some_id = int(data.examples(run)["example_id"].iat[5])
        assert layout.find_target("synthetic", f" {some_id} ", []) == (some_id, keep, "")
        assert layout.find_target("synthetic", f"#{some_id}", []) == (some_id, keep, "")
        assert layout.find_target("synthetic", "999999", [])[2] == "no example 999999 in this run"
        assert layout.find_target("synthetic", "THINK", ["crazy"]) == (keep, ["crazy", "think"], "")
        assert layout.find_target("synthetic", "think", ["think"]) == (keep, keep, "")
        assert layout.find_target("synthetic", "hel", []) == (keep, ["hello"], "")     # one sign contains it
        assert layout.find_target("synthetic", "o", [])[2].endswith("\u2026")           # many: listed, none chosen
        assert "no sign or example 'zzz'" in layout.find_target("synthetic", "zzz", [])[2]
        assert layout.find_target("synthetic", "  ", []) == (keep, keep, "")
        data.configure(text_runs_dir)
        first = data.examples(data.get_run("text-parens"))
        selected, classes, _ = layout.find_target("text-parens", str(first["name"].iat[3]), [])
        assert selected == int(first["example_id"].iat[3]) and classes is keep
    finally:
        data.configure(previous)
