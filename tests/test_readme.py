"""The README is executable documentation: its two commands, its tour and CI agree."""
from __future__ import annotations

import ast
import concurrent.futures
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from doc_blocks import Block, all_blocks, fenced_blocks

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return fenced_blocks(README, lang)


def test_readme_starts_with_exactly_two_setup_commands():
    before_tour = README.split("## ")[0]
    commands = fenced_blocks(before_tour, "sh")
    assert [c.strip() for c in commands] == [
        "python3 -m pip install . && assay check specs/two_phase_commit.py",
        "python3 -m pip install -e '.[test]' && python3 -m pytest",
    ]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _blocks("sh")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"


def test_tour_spec_checks_clean(tmp_path):
    tour = next(b for b in _blocks("python") if b.startswith("# ping.py"))
    spec = tmp_path / "ping.py"
    spec.write_text(tour)
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(spec),
                          "--param", "clients=3"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all properties hold" in run.stdout


def test_tour_contract_bug_is_found(tmp_path):
    """The tour's @requires is not decoration: a server that answers the wrong ping breaks it."""
    tour = next(b for b in _blocks("python") if b.startswith("# ping.py"))
    buggy = tour.replace("Pong(m.n)", "Pong(m.n + 1)")
    assert buggy != tour
    spec = tmp_path / "ping_bug.py"
    spec.write_text(buggy)
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(spec)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "requires of c0.pong fails" in run.stdout or "requires of c1.pong" in run.stdout
    assert "blame: server" in run.stdout


def test_client_api_example_runs_as_written(tmp_path):
    example = next(b for b in _blocks("python") if "assay.runtime.connect(" in b)
    script = tmp_path / "client.py"
    script.write_text(example)
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Done(balance=5)"
    assert lines[1] == "{'balance': 5}"
    assert "no action enabled now that sends Withdraw(amount=9) to bank" in lines[2]


# --- every shell session of the README is run, and its output compared -----------------------
#
# A block with `$ assay ...` lines is a shell session. Each is run in a fresh temporary folder
# holding a copy of `specs/` and `tests/fixtures/` and every file the README writes out (a block
# whose first line is `# NAME` — `# ping.py`, `# deploy.toml` — is saved as NAME; the ports of a
# deployment file are replaced by free ones, so a run does not collide with another). Each `$`
# line runs (`assay` is `python -m assay.cli` of this checkout; `# ...` comments are dropped), in
# order, with standard error merged into standard output; the lines after it up to the next `$`
# are its expected output. `$ export NAME=VALUE` sets a variable for the block's later commands.
# Blocks run in parallel threads, as on a terminal 200 columns wide (no line is wrapped).
#
# Comparison, after normalising both sides: a line that is only `...` stands for any number of
# lines, `...` inside a line for any text (doctest's ELLIPSIS); everything else must be equal
# (trailing spaces aside). Normalised: durations (`0.88 s`, `12 s`) -> `<t> s`, rates
# (`12,345 states/s`; also transitions, steps, events, obligations) -> `<n> states/s`,
# temporary paths (`/tmp/assay-run-x1y2`) -> `<tmp>`, process ids (`pid 1234`) -> `pid <pid>`.
#
# What the solver picks (`verify`'s counterexample values) may change with the z3 release:
# the README elides it (`balance=...`), so only assay's own output is compared.
#
# A marker on the line above a block changes what is done with it:
#   <!-- readme-test: commands (reason) -->  run every command, compare no output: each must
#                                             end with exit 0 or 1 (no usage error, no crash)
#   <!-- readme-test: skip (reason) -->       not run; the reason is required and listed
# Blocks that are not sessions (python, pycon, sh, a synopsis) are tested by the test named in
# `NOT_SESSIONS`, or only compiled.

SESSION_TIMEOUT = 90


def _readme_blocks() -> list[Block]:
    return all_blocks(README)


def _is_session(b: Block) -> bool:
    return any(line.startswith("$ ") for line in b.body.splitlines())


def _files() -> dict[str, str]:
    """The files the README writes out: blocks whose first line is `# NAME.ext`."""
    files = {}
    for b in _readme_blocks():
        m = re.match(r"# ([\w.-]+\.(?:py|toml))\s*$", b.body.splitlines()[0] if b.body else "")
        if m and b.lang in ("python", "toml"):
            files[m.group(1)] = b.body
    return files


def _free_port() -> int:
    from runtime_support import free_ports

    return free_ports(1)[0]


def _session_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="readme-session-"))
    shutil.copytree(ROOT / "specs", folder / "specs")
    shutil.copytree(ROOT / "tests" / "fixtures", folder / "tests" / "fixtures")
    for name, body in _files().items():
        if name.endswith(".toml"):
            body = re.sub(r"(?m)^port = \d+", lambda _: f"port = {_free_port()}", body)
        (folder / name).write_text(body)
    return folder


def _normalise(text: str) -> str:
    text = re.sub(r"/tmp/[\w./-]+", "<tmp>", text)
    text = re.sub(r"\b\d+(?:\.\d+)? s\b", "<t> s", text)
    text = re.sub(r"\b[\d,]+ (states|transitions|steps|events|obligations)/s\b", r"<n> \1/s", text)
    text = re.sub(r"\bpid \d+", "pid <pid>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.compile("".join(parts), flags=re.S)


def _matches(expected: str, actual: str) -> bool:
    expected, actual = _normalise(expected), _normalise(actual)
    return _pattern(expected + "\n").fullmatch(actual + "\n") is not None if expected \
        else actual == ""


def _commands(b: Block) -> list[tuple[str, str]]:
    """The (command, expected output) pairs of a session block."""
    pairs: list[tuple[str, list[str]]] = []
    for line in b.body.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        else:
            assert pairs, f"README.md:{b.line}: output before the first command"
            pairs[-1][1].append(line)
    return [(c, "\n".join(out)) for c, out in pairs]


def _run_session(b: Block) -> list[str]:
    """Run a session block; the list of what does not match (empty: it all does)."""
    folder = _session_folder()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ASSAY_PROGRESS_INTERVAL": "3600",
           "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    problems = []
    try:
        for command, expected in _commands(b):
            argv = shlex.split(command, comments=True)
            if argv[0] == "export":                 # `$ export NAME=VALUE`, for what follows
                name, _, value = argv[1].partition("=")
                env[name] = value
                assert not expected, f"README.md:{b.line}: `export` prints nothing"
                continue
            assert argv[0] == "assay", f"README.md:{b.line}: {command!r} is not an assay command"
            run = subprocess.run([sys.executable, "-m", "assay.cli", *argv[1:]], cwd=folder,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, timeout=SESSION_TIMEOUT)
            if run.returncode == 70 or "Traceback" in run.stdout:
                problems.append(f"$ {command}\ncrashed (exit {run.returncode}):\n{run.stdout}")
            elif b.kind == "commands":
                if run.returncode not in (0, 1):
                    problems.append(f"$ {command}\nexit {run.returncode}:\n{run.stdout}")
            elif not _matches(expected, run.stdout):
                problems.append(f"$ {command}\nthe README shows:\n{expected}\n"
                                f"it prints (exit {run.returncode}):\n{run.stdout}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return problems


def _sessions() -> list[Block]:
    return [b for b in _readme_blocks() if _is_session(b)]


@pytest.fixture(scope="module")
def session_results() -> dict[int, list[str]]:
    runnable = [b for b in _sessions() if b.kind != "skip"]
    # the longest first (deployments, then more commands): the slowest block is the wait
    runnable.sort(key=lambda b: (-("--deploy" in b.body), -b.body.count("\n$ ")))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([b.line for b in runnable], pool.map(_run_session, runnable)))


@pytest.mark.parametrize("line", [b.line for b in _sessions() if b.kind != "skip"])
def test_readme_session_prints_what_the_readme_shows(line: int, session_results):
    problems = session_results[line]
    assert not problems, f"README.md:{line}:\n" + "\n\n".join(problems)


def test_every_session_is_run_or_skipped_with_a_reason(capsys):
    kinds = {"exact", "commands", "skip"}
    skipped = []
    for b in _readme_blocks():
        assert b.kind in kinds, f"README.md:{b.line}: unknown readme-test marker {b.kind!r}"
        if b.kind in ("skip", "commands"):
            assert b.reason, f"README.md:{b.line}: a `{b.kind}` marker needs a (reason)"
        if b.kind == "skip":
            skipped.append(f"README.md:{b.line}: {b.reason}")
        assert _is_session(b) or b.kind == "exact" or b.lang in ("python", "toml"), \
            f"README.md:{b.line}: a marker on a block that is not a session"
    runnable = [b for b in _sessions() if b.kind != "skip"]
    with capsys.disabled():
        print(f"\nREADME: {len(runnable)} sessions run, {len(skipped)} skipped:")
        for s in skipped:
            print("  " + s)
    assert len(runnable) >= 10


def test_every_python_block_compiles():
    """The Python blocks that are not whole files are fragments: each must still parse."""
    for b in _readme_blocks():
        if b.lang == "python":
            ast.parse(textwrap.dedent(b.body), f"README.md:{b.line}")


def test_the_comparison_finds_a_stale_count_and_allows_the_documented_variations():
    shown = "✗ 14 of 100 runs found a violation\n  run 4 (seed 516...): ...\n...\nok after 0.42 s"
    assert _matches(shown, "✗ 14 of 100 runs found a violation\n  run 4 (seed 5161): x\n"
                           "more\nlines\nok after 12.9 s\n")
    assert not _matches(shown, "✗ 13 of 100 runs found a violation\n  run 4 (seed 5161): x\n"
                               "ok after 1 s")
    assert not _matches("a\nb", "a\nb\nc")                   # nothing unshown at the end
    assert _matches("a\n...", "a\nb\nc") and _matches("node logs: /tmp/assay-run-a1",
                                                      "node logs: /tmp/assay-run-zz9")


def test_the_command_line_synopsis_names_only_options_the_commands_have():
    """The plain block under "The command line": every `assay CMD` line's options exist, and
    every command of `assay` is in it."""
    from assay.cli import main

    synopsis = next(b.body for b in _readme_blocks()
                    if b.lang == "" and b.body.startswith("assay check SPEC"))
    usages = re.split(r"\n(?=\S)", synopsis.strip())
    named = set()
    for usage in usages:
        program, command = usage.split()[:2]
        if program != "assay":
            continue
        named.add(command)
        have = {o for p in main.commands[command].params for o in p.opts + p.secondary_opts}
        for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage):
            assert option in have, f"`assay {command}` has no {option} (README synopsis)"
    hidden = {n for n, c in main.commands.items() if c.hidden}
    assert named == set(main.commands) - hidden


def _shipped_rows() -> list[tuple[str, str]]:
    table = README.split("## Shipped specs")[1].split("\n## ")[0]
    rows = [re.match(r"\| `(specs/[^`]+)` \| .* \| (.*) \|$", row) for row in table.splitlines()]
    return [(m.group(1), m.group(2)) for m in rows
            if m and re.search(r"\d (states|orbits)", m.group(2))]


@pytest.mark.parametrize("spec, claim", _shipped_rows(), ids=lambda v: v if "/" in v else "")
def test_shipped_spec_counts_in_the_readme_are_what_check_finds(spec, claim):
    """Each row of "Shipped specs" that gives state counts gives the one `check` finds with the
    spec's default parameters (a row may list more, for other parameters)."""
    import assay

    result = assay.check(str(ROOT / spec), max_states=100_000)
    numbers = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", claim)}
    assert claim.startswith("holds") and result.verdict == "ok", (spec, result)
    assert result.states in numbers, f"{spec}: check finds {result.states:,} states: {claim}"


def test_the_first_command_s_count_is_what_check_finds():
    import assay

    claim = re.search(r"model checks two-phase commit \((\d[\d,]*) states, all properties hold",
                      README.replace("\n", " "))
    assert claim is not None
    result = assay.check(str(ROOT / "specs" / "two_phase_commit.py"))
    assert result.ok and result.states == int(claim.group(1).replace(",", ""))


def test_markers_run_commands_without_comparing_and_catch_a_wrong_command():
    ran = Block("console", "$ assay check specs/register_bug_volatile.py --faults crash=1\n"
                "(its long counterexample, not compared)\n", 1, "commands (long output)")
    assert ran.kind == "commands" and ran.reason == "long output"
    assert _run_session(ran) == []                       # exit 1, a violation: allowed
    wrong = Block("console", "$ assay check specs/no_such_spec.py\n", 1, "commands (x)")
    assert "exit 2" in _run_session(wrong)[0]
    stale = Block("console", "$ assay check specs/lock_server.py\n...\nstates       35\n...\n",
                  1, None)
    assert "it prints (exit 0)" in _run_session(stale)[0]
    with pytest.raises(AssertionError, match="marker"):
        Block("console", "", 1, "skip (")
