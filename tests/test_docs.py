"""Every Python and shell code block in README.md and docs/*.md runs.

How a doc writer marks a block (an HTML comment on the line right before the
fence; Markdown viewers do not show it):

- no marker: the block runs in `make test` (keep it to seconds: help texts,
  loading a model or data, a few predictions);
- `<!-- test: slow -->`: it trains real models; it runs under the `slow`
  marker (`make test-all`, `pytest -m slow`) and `make test` leaves it out;
- `<!-- test: skip (REASON) -->`: it cannot run here (a network download, a
  TPU, several machines, a running TF Serving server, a placeholder path);
  the reason is required and shows up as the skip reason.

Only fences labelled python, bash, sh or shell are run; others (text, yaml,
an unlabelled fence for output or a folder tree) are shown only.

A file's blocks run in order, like a reader following the guide: its Python
blocks in one interpreter (a name defined in one block is there in the next),
its shell blocks with `bash -e -o pipefail`, all in one scratch folder. So a
block may use what an earlier block of the same file made: `model`, a
`runs/...` folder, an export in `saved_models/`. The fast run of a file runs
only its unmarked blocks; its slow run runs its unmarked and slow blocks. A
fast block therefore must not need anything from a slow one.

The scratch folder is `<tmp>/work`, with `<tmp>/shared` linking to the real
models and data, so paths like `../shared/models/tfhub/...` work as they do
from the repository root, and copies of the repository's `examples/` and
`benchmarks/`. `tfxfer` and `python` are the virtualenv's. Whatever a block
writes (runs/, saved_models/, .keras files) stays in the scratch folder, never
in the repository. Python blocks with `>>>` prompts run their prompted lines;
the outputs shown are not compared.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^\s`]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<marker>.*?)\s*-->\s*$")
SKIP = re.compile(r"^skip\s*\((?P<reason>.+)\)$")
FAST_TIMEOUT = 300  # seconds for one file's fast blocks; they take well under a minute
SLOW_TIMEOUT = 3600
COPIED_FOLDERS = ("examples", "benchmarks")
WATCHED_FOLDERS = ("runs", "saved_models", "examples")


class Block:
    def __init__(self, path, line, language, code, marker):
        self.path = path
        self.line = line  # the fence's line number, counting from 1
        self.language = language
        self.code = code
        self.marker = marker  # None, "slow" or "skip (reason)"

    @property
    def name(self):
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def tier(self):
        if self.marker is None:
            return "fast"
        return "slow" if self.marker == "slow" else "skip"

    @property
    def skip_reason(self):
        match = SKIP.match(self.marker or "")
        return match and match.group("reason").strip()


def code_blocks(path):
    """The fenced blocks of a Markdown file; a marker belongs to the fence right after it."""
    blocks, errors = [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    marker, marker_line, index = None, None, 0
    while index < len(lines):
        line = lines[index]
        found = MARKER.match(line)
        if found:
            if marker is not None:
                errors.append(f"{path.name}:{marker_line}: a test marker with no code block after it")
            marker, marker_line = found.group("marker"), index + 1
            index += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if line.strip() and marker is not None:
                errors.append(f"{path.name}:{marker_line}: a test marker must be right before a code fence")
                marker = None
            index += 1
            continue
        start, indent, closing = index, len(fence.group("indent")), fence.group("fence")
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != closing:
            text = lines[index]
            body.append(text[indent:] if text[:indent].strip() == "" else text.lstrip())
            index += 1
        index += 1
        language = RUNNABLE.get(fence.group("info").lower())
        if language is None:
            if marker is not None:
                errors.append(f"{path.name}:{marker_line}: a test marker before a block that is never run")
        else:
            blocks.append(Block(path, start + 1, language, "\n".join(body) + "\n", marker))
        marker = None
    if marker is not None:
        errors.append(f"{path.name}:{marker_line}: a test marker with no code block after it")
    return blocks, errors


def marker_errors(block):
    if block.marker is None or block.marker == "slow":
        return []
    if block.marker.startswith("skip"):
        return [] if block.skip_reason else [f"{block.name}: `skip` needs a reason: <!-- test: skip (REASON) -->"]
    return [f"{block.name}: unknown test marker {block.marker!r} (use `slow` or `skip (REASON)`)"]


def runnable_code(block):
    """The code to run: the block itself, or the prompted lines of a `>>>` example."""
    lines = block.code.splitlines()
    if block.language == "python" and any(line.startswith(">>>") for line in lines):
        lines = [line[4:] for line in lines if line.startswith((">>> ", "... ")) or line in (">>>", "...")]
        return "\n".join(lines) + "\n", None
    # Padding with blank lines makes Python's line numbers those of the Markdown file.
    return block.code, block.line


ALL_BLOCKS = {path: code_blocks(path)[0] for path in DOCUMENTS}


def documents_with(tiers):
    return [
        pytest.param(path, id=str(path.relative_to(REPO)))
        for path, blocks in ALL_BLOCKS.items()
        if any(block.tier in tiers for block in blocks)
    ]


def test_markers_are_well_formed():
    """Markers say `slow` or `skip (REASON)`, right before a python/bash/sh/shell fence."""
    errors = []
    for path in DOCUMENTS:
        blocks, found = code_blocks(path)
        errors += found
        for block in blocks:
            errors += marker_errors(block)
    assert not errors, "\n".join(errors)


def test_the_documents_have_blocks():
    counts = {
        tier: sum(block.tier == tier for blocks in ALL_BLOCKS.values() for block in blocks)
        for tier in ("fast", "slow", "skip")
    }
    assert counts["fast"] and counts["slow"], counts
    readme = ALL_BLOCKS[REPO / "README.md"]
    commands = [block for block in readme if "make demo" in block.code]
    assert commands and all(block.tier == "skip" for block in commands), (
        "the README's two commands never run inside the suite"
    )


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(block, id=block.name)
        for blocks in ALL_BLOCKS.values()
        for block in blocks
        if block.tier == "skip" and block.skip_reason
    ],
)
def test_not_runnable_here(block):
    pytest.skip(f"{block.name}: {block.skip_reason}")


@pytest.mark.real
@pytest.mark.parametrize("path", documents_with({"fast"}))
def test_fast_blocks_run(path, tmp_path):
    run_blocks([block for block in ALL_BLOCKS[path] if block.tier == "fast"], tmp_path, FAST_TIMEOUT)


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("path", documents_with({"slow"}))
def test_slow_blocks_run(path, tmp_path):
    run_blocks([block for block in ALL_BLOCKS[path] if block.tier in ("fast", "slow")], tmp_path, SLOW_TIMEOUT)


# The blocks run in a child process (a fresh TensorFlow, a cwd of their own):
# Python blocks exec'd in one namespace, shell blocks through bash, in order.
DRIVER = r"""
import json
import subprocess
import sys
import time
import traceback

namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"\n===== {block['name']} ({block['language']}) =====", flush=True)
    started = time.monotonic()
    if block["language"] == "python":
        code = "\n" * (block["first_line"] or 0) + block["code"]
        try:
            exec(compile(code, block["filename"], "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"\nFAILED: the Python block at {block['name']}", flush=True)
            sys.exit(1)
        sys.stdout.flush()
        sys.stderr.flush()
    else:
        returncode = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]]).returncode
        if returncode:
            print(f"\nFAILED: the shell block at {block['name']} (exit code {returncode})", flush=True)
            sys.exit(1)
    print(f"===== {block['name']}: {time.monotonic() - started:.1f} s", flush=True)
"""


def run_blocks(blocks, tmp_path, timeout):
    if not SHARED.is_dir():
        pytest.skip(f"real artifact not available: {SHARED} (see ../shared/DATA.md)")
    work = scratch_folder(tmp_path)
    plan = []
    for block in blocks:
        code, first_line = runnable_code(block)
        plan.append(
            {
                "name": block.name,
                "filename": str(block.path),
                "language": block.language,
                "code": code,
                "first_line": first_line,
            }
        )
    (tmp_path / "blocks.json").write_text(json.dumps(plan), encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    before = repository_outputs()
    log = tmp_path / "output.log"  # `tail -f` it to follow a long run
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as output_file:
        process = subprocess.Popen(
            [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "blocks.json")],
            cwd=work,
            env=block_environment(tmp_path),
            stdout=output_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that a timeout stops the blocks' own processes too
        )
        try:
            process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            timed_out = True
    seconds = time.monotonic() - started
    output = log.read_text(encoding="utf-8", errors="replace")
    print(output)  # shown with -rP or -s
    assert not timed_out, f"the blocks ran past {timeout} s:\n{output[-8000:]}"
    assert process.returncode == 0, f"after {seconds:.0f} s:\n{output[-12000:]}"
    assert repository_outputs() == before, "a block wrote into the repository"


def scratch_folder(tmp_path):
    """`<tmp>/work`, where `../shared` is the real shared folder, with copies of examples/ and benchmarks/."""
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    for name in COPIED_FOLDERS:
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def block_environment(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TFXFER_", "TF_CONFIG", "PYTEST_"))}
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TMPDIR"] = str(tmp_path)
    return env


def repository_outputs():
    """What git sees in the folders a doc block could write to (tracked changes, untracked and ignored files)."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", *WATCHED_FOLDERS],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        return None
    return [line for line in result.stdout.splitlines() if "__pycache__" not in line]
