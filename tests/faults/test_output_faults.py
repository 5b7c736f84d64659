"""Outputs of a run: checked before any training, written as one
consistent set, and nothing left behind by a run that was killed."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from unisched._io import (
    MANIFEST,
    atomic_path,
    check_output_dir,
    output_set,
    write_text,
)

CLI = [sys.executable, "-m", "unisched.app.cli"]


@pytest.mark.parametrize("command", [
    ["train", "--framework", "torch", "--schedule", "constant(0.1)"],
    ["compare", "--frameworks", "torch", "--schedule", "constant(0.1)"],
    ["lr-find", "--framework", "torch"],
    ["chapter"],
])
@pytest.mark.parametrize("where", ["file", "unwritable"])
def test_out_is_checked_before_any_training(tmp_path, command, where):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    if where == "unwritable":
        out = "/proc/unisched-cannot-write-here/out"
    done = subprocess.run([*CLI, *command, "--epochs", "1", "--out",
                           str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0], done.stderr
    assert "epoch" not in done.stdout          # nothing trained


def test_a_run_replaces_the_previous_set_and_keeps_user_files(tmp_path):
    out = tmp_path / "out"
    with output_set(out) as stage:
        for name in ("torch.json", "keras.json", "summary.md"):
            write_text(os.path.join(stage, name), name)
    (out / "notes.txt").write_text("mine")
    with output_set(out) as stage:
        for name in ("torch.json", "summary.md"):
            write_text(os.path.join(stage, name), "second " + name)
    assert sorted(os.listdir(out)) == [MANIFEST, "notes.txt", "summary.md",
                                       "torch.json"]
    assert (out / "summary.md").read_text() == "second summary.md"
    assert json.loads((out / MANIFEST).read_text())["files"] == [
        "summary.md", "torch.json"]
    assert sorted(os.listdir(tmp_path)) == ["out"]   # no staging left


def test_a_failed_run_leaves_the_previous_set(tmp_path):
    out = tmp_path / "out"
    with output_set(out) as stage:
        write_text(os.path.join(stage, "summary.md"), "first")
    with pytest.raises(RuntimeError):
        with output_set(out) as stage:
            write_text(os.path.join(stage, "summary.md"), "second")
            raise RuntimeError("training diverged")
    assert (out / "summary.md").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_killed_run_leaves_the_previous_set_and_is_cleaned_up(tmp_path):
    out = tmp_path / "out"
    with output_set(out) as stage:
        write_text(os.path.join(stage, "summary.md"), "first")
    script = textwrap.dedent(f"""
        import os, time
        from unisched._io import output_set, write_text
        with output_set({str(out)!r}) as stage:
            write_text(os.path.join(stage, "summary.md"), "second")
            with open(os.path.join(stage, "metrics.json"), "w") as f:
                f.write("half")
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = sorted(os.listdir(tmp_path))
    assert left[0].startswith(f".out.{proc.pid}.") and left[1] == "out"
    assert (out / "summary.md").read_text() == "first"
    with output_set(out) as stage:          # the next run cleans up
        write_text(os.path.join(stage, "summary.md"), "third")
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "metrics.json"
    dead = subprocess.run([sys.executable, "-c", "import os; "
                           "print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".metrics.json.{dead}.abc.tmp.json"
    stale.write_text("half")
    live = tmp_path / f".metrics.json.{os.getppid()}.xyz.tmp.json"
    live.write_text("another writer, still running")
    with atomic_path(target) as tmp:
        with open(tmp, "w") as handle:
            handle.write("{}")
    assert not stale.exists()
    assert live.exists() and target.read_text() == "{}"


def test_the_staging_folder_lives_beside_the_output(tmp_path):
    seen = []
    with output_set(tmp_path / "out") as stage:
        seen.append(os.path.dirname(stage))
        assert os.path.basename(stage).startswith(f".out.{os.getpid()}.")
    assert seen == [str(tmp_path)]


def test_the_output_folder_is_checked_in_process(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    with pytest.raises(ValueError, match=r"--out '.*taken' is a file, not "
                                         r"a folder"):
        check_output_dir(taken)
    with pytest.raises(ValueError, match=r"--out '.*taken/out' cannot be "
                                         r"written: Not a directory"):
        check_output_dir(taken / "out")
    assert check_output_dir(tmp_path / "new") == str(tmp_path / "new")
    assert os.listdir(tmp_path / "new") == []       # the probe is gone


@pytest.mark.parametrize("answer,kept", [
    (ProcessLookupError, False),    # the writer is gone: its leftover too
    (PermissionError, True),        # another user's live process
])
def test_a_leftover_is_removed_only_when_its_writer_is_gone(
        tmp_path, monkeypatch, answer, kept):
    leftover = tmp_path / ".out.txt.999999.x.tmp.txt"
    leftover.write_text("half")
    real_kill = os.kill

    def kill(pid, sig):
        if pid == 999999:
            raise answer(pid)
        return real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    write_text(tmp_path / "out.txt", "done")
    assert leftover.exists() == kept
    assert (tmp_path / "out.txt").read_text() == "done"
