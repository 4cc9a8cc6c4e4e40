"""The trace explorer (`--html`) and the messages a run leaves behind (`--mermaid`).

The spec `fixtures/explorer/lost_ping.py` holds when no message is lost and fails when the
network drops one (`--faults drop=1`): the dropped ping is the bug, and the other one is still
in flight when the property fails.  The page is checked as built (data, escaping) and in a real
headless Chromium: it loads without console errors, lists every step, shows the violation, and
a click on a step shows the state after it.  Without Chromium the browser test skips, except
in CI (CI=true), where it fails.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from assay.kernel.trace import replay_trace

REPO = Path(__file__).resolve().parents[1]
LOST = REPO / "tests" / "fixtures" / "explorer" / "lost_ping.py"
LASSO = REPO / "specs" / "lock_server_bug_priority.py"


def cli(*args: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file the commands below write: the lost ping's trace and pages (check, replay,
    simulate), the page of its correct run (none), and a liveness lasso's page."""
    d = tmp_path_factory.mktemp("explorer")
    first = {
        "lost": ("check", LOST, "--faults", "drop=1", "-q", "--trace-out", d / "lost.json",
                 "--html", d / "check.html"),
        "ok": ("check", LOST, "-q", "--html", d / "ok.html"),
        "lasso": ("check", LASSO, "-q", "--trace-out", d / "lasso.json", "--html",
                  d / "lasso.html"),
        "sim": ("simulate", LOST, "--faults", "drop=0.5", "--runs", "4", "-j", "1", "-q",
                "--out", d / "sim", "--html", d / "sim.html"),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(first, pool.map(lambda a: cli(*a), first.values())))
    runs["replay"] = cli("replay", d / "lost.json", "--html", d / "replay.html", "--mermaid",
                         d / "lost.md")
    (d / "runs.json").write_text(json.dumps({k: [r.returncode, r.stdout, r.stderr]
                                             for k, r in runs.items()}))
    return d


def run_of(out: Path, name: str) -> list[Any]:
    got: list[Any] = json.loads((out / "runs.json").read_text())[name]
    return got


def data_of(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="assay-data">(.*?)</script>', page,
                  re.S)
    assert m is not None
    got: dict[str, Any] = json.loads(m.group(1))
    return got


# --- what the page holds ----------------------------------------------------------------------


def test_check_replay_and_simulate_write_the_page_of_the_counterexample(out: Path) -> None:
    for name, page in (("lost", "check.html"), ("replay", "replay.html"), ("sim", "sim.html")):
        code, stdout, stderr = run_of(out, name)
        assert code == 1, stderr
        # (rich wraps a long line at a space, before the path: the longer tmp paths of a
        # pytest-xdist worker made that "written to \n/tmp/...")
        assert f"written to {out / page}" in " ".join(stdout.split())
    assert (out / "check.html").read_text() == (out / "replay.html").read_text()
    sim = data_of((out / "sim.html").read_text())
    assert sim["engine"] == "simulate" and sim["violation"]["name"] == "nothing_lost"


def test_a_check_without_a_counterexample_writes_no_page(out: Path) -> None:
    code, stdout, _ = run_of(out, "ok")
    assert code == 0
    assert f"no counterexample, so no page written to {out / 'ok.html'}" in " ".join(stdout.split())
    assert not (out / "ok.html").exists()


def test_the_page_shows_the_dropped_and_the_undelivered_message(out: Path) -> None:
    page = (out / "check.html").read_text()
    d = data_of(page)
    assert [s["description"].split(" ")[:3] for s in d["steps"]] == [
        ["sender", "fires", "start"], ["the", "network", "drops"]]
    fates = {m["id"]: (m["fate"], m["sent"], m["end"]) for m in d["messages"]}
    assert sorted(fates.values(), key=str) == [("dropped", 1, 2), ("in flight", 1, None)]
    assert d["states"][2]["in_flight"] == [m for m, f in fates.items() if f[0] == "in flight"]
    assert d["violation"]["kind"] == "property" and d["violation_step"] == 2
    assert d["violation"]["blame"] == "nothing_lost"
    # the diagram draws both, each in its own style, and marks the violating step
    assert page.count('class="msg dropped"') == 1 and page.count('class="msg inflight"') == 1
    assert 'class="row violation" data-step="2"' in page


def test_the_page_marks_changed_and_rewritten_fields(out: Path) -> None:
    step = data_of((out / "check.html").read_text())["steps"][0]
    assert step["changes"] == [{"instance": "sender", "field": "sent", "old": "0", "new": "2"}]
    assert step["rewritten"] == [{"instance": "sender", "field": "ok", "value": "True"}]


def test_a_field_value_with_a_closing_script_tag_cannot_break_the_page(out: Path) -> None:
    from assay.explorer import embed_json

    page = (out / "check.html").read_text()
    assert page.count("</script>") == 2            # the data block's and the script's own
    assert "<!--" not in page.split("<body>")[1]
    assert "</script><script>document.title" in json.dumps(data_of(page))
    for text in ("</script>", "<!--", "a & b", "\u2028", "</SCRIPT >"):
        embedded = embed_json({"v": text})
        assert "<" not in embedded and ">" not in embedded and "\u2028" not in embedded
        assert json.loads(embedded) == {"v": text}


def test_the_page_of_a_lasso_marks_the_cycle(out: Path) -> None:
    code, _, stderr = run_of(out, "lasso")
    assert code == 1, stderr
    page = (out / "lasso.html").read_text()
    d = data_of(page)
    k, n = d["cycle_start"], len(d["steps"])
    assert d["violation"]["kind"] == "liveness" and 0 < k < n
    assert f"steps {k + 1}–{n} repeat forever" in page
    assert page.count('<g class="row cycle') == n - k
    assert d["in_flight_label"] == "in flight as the cycle repeats"


def test_the_page_needs_no_network() -> None:
    from assay.explorer import page_data, to_html

    page = to_html(page_data(_lost_replay()))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in page


def _lost_replay() -> Any:
    """The lost ping's counterexample replayed in this process."""
    from assay.checker import check
    from assay.kernel import Faults, Kernel
    from assay.model.load import build

    system, name, typed = build(str(LOST), None, {})
    r = check(Kernel(system, Faults.parse("drop=1")), spec=str(LOST), system_name=name,
              params=typed)
    assert r.trace is not None
    return replay_trace(r.trace, LOST)


def test_flights_follow_each_message_to_its_end() -> None:
    from assay.explorer import flights

    result = _lost_replay()
    fl = flights(result.kernel, result.start, result.steps)
    assert [(m.sent, m.fate, m.end) for m in fl.messages] == [
        (1, "dropped", 2), (1, "in flight", None)] or \
        [(m.sent, m.fate, m.end) for m in fl.messages] == [(1, "in flight", None),
                                                            (1, "dropped", 2)]
    assert [m.envelope for m in fl.in_flight_at_end()] == \
        result.kernel.in_flight(fl.states[-1])
    assert fl.sent == [[], [1, 2], []]


def test_kernel_assigned_sees_a_field_set_to_the_value_it_had() -> None:
    result = _lost_replay()
    k, start = result.kernel, result.start
    first = result.steps[0]
    assert {c.field for c in first.changes} == {"sent"}
    assert k.assigned(start, first.event) == {"sender": frozenset({"sent", "ok"})}
    after = k.apply(start, first.event)[0]
    assert k.assigned(after, result.steps[1].event) == {}          # a drop runs no code


# --- mermaid ----------------------------------------------------------------------------------


def test_mermaid_in_a_markdown_file_is_fenced_and_shows_lost_and_undelivered_messages(
        out: Path) -> None:
    text = (out / "lost.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "```mermaid" and lines[1] == "sequenceDiagram" and lines[-1] == "```"
    assert any(x.strip().startswith("sender--xreceiver: 2. dropped Ping") for x in lines)
    inflight = [x.strip() for x in lines if "--)" in x]
    assert len(inflight) == 1
    assert inflight[0].startswith("sender--)receiver: still in flight at the end: Ping(n=")
    assert inflight[0].endswith("(sent at step 1, never delivered)")


def test_mermaid_to_another_file_is_not_fenced(tmp_path: Path, out: Path) -> None:
    r = cli("replay", out / "lost.json", "--mermaid", tmp_path / "lost.mmd")
    assert r.returncode == 1, r.stderr
    assert (tmp_path / "lost.mmd").read_text().startswith("sequenceDiagram\n")


def test_html_to_an_unwritable_place_exits_2_before_running(tmp_path: Path) -> None:
    r = cli("check", LOST, "--html", tmp_path / "no" / "such" / "page.html")
    assert r.returncode == 2
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


# --- in a real browser ------------------------------------------------------------------------


def test_the_page_works_in_headless_chromium(out: Path) -> None:
    from headless_chromium import Browser, find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y "
                        "--no-install-recommends chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    browser = Browser(binary, timeout=30)
    try:
        lost = (out / "check.html").as_uri()
        browser.open(lost)
        shown = browser.evaluate("""JSON.stringify({
            steps: document.querySelectorAll('#steps li').length,
            verdict: document.getElementById('verdict').textContent,
            title: document.title,
            selected: document.getElementById('state').getAttribute('data-step')})""")
        got = json.loads(shown)
        assert got["steps"] == 2
        assert "property nothing_lost" in got["verdict"] and "blame: nothing_lost" in \
            got["verdict"]
        assert got["title"].startswith("assay trace explorer")     # no injected script ran
        assert got["selected"] == "2"              # it opens on the violating step
        # a click on step 1 shows the state after it: sent changed, ok rewritten
        clicked = json.loads(browser.evaluate("""(async () => {
            document.querySelector('#steps li[data-step="1"]').click();
            await new Promise(r => setTimeout(r, 100));
            const row = f => document.querySelector(
                '#state table[data-instance="sender"] tr[data-field="' + f + '"]');
            return JSON.stringify({
                step: document.getElementById('state').getAttribute('data-step'),
                hash: location.hash, heading: document.querySelector('#state h2').textContent,
                sent: [row('sent').className, row('sent').textContent],
                ok: [row('ok').className, row('ok').textContent],
                selected: document.querySelector('#steps li.selected').dataset.step});
        })()"""))
        assert clicked["step"] == "1" and clicked["hash"] == "#step=1"
        assert clicked["heading"] == "Step 1 of 2: sender fires start"
        assert clicked["sent"][0] == "changed" and "0 → 2" in clicked["sent"][1]
        assert clicked["ok"][0] == "rewritten" and "rewritten, same value" in clicked["ok"][1]
        assert clicked["selected"] == "1"
        # a step chosen by the address (the same page, loaded afresh): the state after the
        # drop, one ping never delivered
        browser.open((out / "replay.html").as_uri() + "#step=2")
        assert browser.evaluate("document.getElementById('state').dataset.step") == "2"
        after = browser.evaluate("document.getElementById('state').textContent")
        assert "In flight at the end of the run" in after and "never delivered" in after
        assert "dropped at step 2" in after
        # a run with every kind of event: drops, copies, crashes, restarts, partitions, timers
        from assay.explorer import page_data, to_html

        walk = random_walk("alternating_bit.py", {}, 0, most=40)
        page = to_html(page_data(walk, title="a random faulty run"))
        kinds = {s.event_json["kind"] for s in walk.steps}
        assert {"drop", "duplicate", "crash", "restart", "partition", "timer"} <= kinds
        (out / "walk.html").write_text(page, encoding="utf-8")
        n = len(walk.steps)
        browser.open((out / "walk.html").as_uri() + f"#step={n}")
        assert browser.evaluate("document.querySelectorAll('#steps li').length") == n
        assert browser.evaluate("document.getElementById('state').dataset.step") == str(n)
        browser.open((out / "lasso.html").as_uri())
        assert browser.evaluate("document.getElementById('lasso').textContent").endswith(
            "repeat forever")
        assert browser.errors == []
        # and the capture of errors works: a page error is seen
        browser.evaluate("setTimeout(() => { throw new Error('seen'); }, 0); 1")
        browser.evaluate("new Promise(r => setTimeout(r, 100))")
        assert any("seen" in e for e in browser.errors)
    finally:
        browser.close()


# --- the books of messages and timers agree with the kernel -------------------------------------


def random_walk(spec: str, params: dict[str, str], seed: int, most: int = 30) -> Any:
    """A seeded random run of a shipped spec with every kind of fault enabled, as a
    `ReplayResult` (what the page is built from)."""
    import random

    from assay.kernel import Faults, Kernel
    from assay.kernel.trace import ReplayResult, explain, initial_values
    from assay.model.load import build

    system, _, _ = build(str(REPO / "specs" / spec), None, params)
    kernel = Kernel(system, Faults.parse("crash=2,drop=2,dup=2,partition=1"))
    rng = random.Random(seed)
    start = kernel.initial_states()[0][0]
    state, steps = start, []
    for i in range(1, most + 1):
        enabled = kernel.enabled_events(state)
        if not enabled:
            break
        step, state = explain(kernel, state, rng.choice(enabled), i)
        steps.append(step)
    return ReplayResult(steps, None, [i.name for i in kernel.instances],
                        initial_values(kernel, start), None, kernel=kernel, start=start)


@pytest.mark.parametrize("spec, params", [
    ("alternating_bit.py", {}), ("first_timeout.py", {}), ("register_bug_volatile.py", {}),
    ("abp_lossy.py", {"full": "drop", "capacity": "2"}),
])
def test_flights_agree_with_the_kernel_at_every_step_of_random_faulty_runs(
        spec: str, params: dict[str, str]) -> None:
    """Random walks with every kind of fault (drops, duplicates, crashes, restarts,
    partitions, losses on lossy links, full links): after each step, the messages the page
    says are in flight, and the timers pending, are exactly the kernel's."""
    from collections import Counter

    from assay.explorer import flights

    kinds: Counter[str] = Counter()
    for seed in range(4):
        walk = random_walk(spec, params, seed)
        kernel, start, steps = walk.kernel, walk.start, walk.steps
        kinds.update(step.event_json["kind"] for step in steps)
        fl = flights(kernel, start, steps)
        for k, s in enumerate(fl.states):
            alive = Counter(m.envelope for m in fl.messages
                            if m.sent <= k and (m.end is None or m.end > k)
                            and m.fate != "lost (link full)")
            assert alive == Counter(kernel.in_flight(s)), (spec, seed, k)
            pending = Counter((t.instance, t.delay, t.message) for t in fl.timers
                              if t.set <= k and (t.end is None or t.end > k))
            assert pending == Counter(kernel.pending_timers(s)), (spec, seed, k)
        assert all(m.end is None or m.end >= m.sent for m in fl.messages)
    assert kinds["deliver"] > 0


def test_kernel_assigned_follows_each_way_of_a_step_that_chooses_and_not_an_aborted_one(
        ) -> None:
    from assay.kernel import Kernel
    from assay.model.load import build

    system, _, _ = build(str(REPO / "tests" / "fixtures" / "explorer" / "choosy.py"), None, {})
    k = Kernel(system)
    start = k.initial_states()[0][0]
    ways = k.enabled_events(start)
    assert len(ways) == 2
    for ev in ways:
        after = k.apply(start, ev)[0]
        assert k.assigned(start, ev) == {"a": frozenset({"x", "went"})}
        changed = {c.field for c in k.changes(start, after)}
        assert changed in ({"went"}, {"x", "went"})       # x=0 is a rewrite, x=1 a change
        (deliver,) = k.enabled_events(after)
        assert k.step(after, deliver).violations[0].kind == "exception"     # aborted
        assert k.assigned(after, deliver) == {}


# --- interceptors' metadata -----------------------------------------------------------------------


def test_the_page_shows_the_meta_an_interceptor_put_in_an_envelope(tmp_path: Path) -> None:
    # the retry layer numbers each item in the envelope's meta (seq=0); its bug twin's dedup
    # passes a resent copy on: the page of the counterexample shows the seq on the item,
    # in the diagram's tooltip and in the step's lists of messages
    spec = REPO / "specs" / "exactly_once_link_bug_no_dedup.py"
    page_path = tmp_path / "eo.html"
    r = cli("check", spec, "-q", "--html", page_path)
    assert r.returncode == 1, r.stdout + r.stderr
    page = page_path.read_text(encoding="utf-8")
    data = data_of(page)
    metas = {m["id"]: m["meta"] for m in data["messages"]}
    items = [m for m in data["messages"] if m["type"] == "Item"]
    assert items and {m["meta"] for m in items if m["src"] == "retry"} == {"seq=0"}
    assert all(m["meta"] == "" for m in data["messages"] if m["type"] == "Ack")
    assert "[meta: seq=0], sent at step" in page                   # the SVG's <title>
    from headless_chromium import Browser, find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed")
        return
    step = next(s["index"] for s in data["steps"] if any(metas[i] for i in s["sent"]))
    browser = Browser(binary, timeout=30)
    try:
        browser.open(page_path.as_uri() + f"#step={step}")
        tags = json.loads(browser.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('#state .tag.meta'))"
            ".map(e => e.textContent))"))
        assert "meta: seq=0" in tags
        assert browser.errors == []
    finally:
        browser.close()


def test_a_run_without_interceptors_has_no_meta(out: Path) -> None:
    data = data_of((out / "check.html").read_text(encoding="utf-8"))
    assert data["messages"] and all(m["meta"] == "" for m in data["messages"])
    assert "[meta:" not in (out / "check.html").read_text(encoding="utf-8")
