"""The command line under inputs that used to print tracebacks or write
files in the wrong format: every user error is one line on stderr and a
non-zero exit."""
import os
import subprocess
import sys

import pytest

from unisched.tools import lr_finder_schedule

CLI = [sys.executable, "-m", "unisched.app.cli"]


def run(*args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.mark.parametrize("spec,match", [
    ("constant(" + "[" * 3000 + ")", "nested deeper than 100"),
    ("constant(" + "9" * 500 + ")", "number of 500 characters"),
    ("cosine(max_update=1e308, base_lr=0.1)",
     "max_update must be < 2**53, got 1e+308"),
    ("constant(1e400)", "base_lr must be finite"),
])
def test_bad_specs_are_one_line_errors(spec, match):
    done = run("values", spec, "--steps", "3")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], done.stderr[-500:]


def test_values_streams_any_number_of_steps():
    # 10**12 rows would be 7 TiB as one array; the output is streamed and
    # a reader that stops early (head) ends the run quietly.
    done = subprocess.run(
        f"{' '.join(CLI)} values 'cosine(max_update=4, base_lr=1.0)' "
        f"--steps 1000000000000 | head -4", shell=True, capture_output=True,
        text=True, timeout=120)
    assert done.stdout.splitlines() == ["step,lr", "0,1.0",
                                        "1,0.8535533905932737", "2,0.5"]
    assert done.stderr == ""


def test_values_chunks_join_seamlessly(monkeypatch, capsys):
    from unisched.app import cli
    monkeypatch.setattr(cli, "VALUES_CHUNK", 3)
    assert cli.main(["values", "exponential(1.0, factor=0.5)", "--steps",
                     "7"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows == ["step,lr"] + [f"{k},{0.5 ** k!r}" for k in range(7)]


@pytest.mark.parametrize("name,magic", [("curves", b"\x89PNG"),
                                        ("curves.svg", b"<?xml"),
                                        ("curves.PDF", b"%PDF")])
def test_plot_format_comes_from_the_final_name(tmp_path, name, magic):
    out = tmp_path / name
    done = run("plot", "cosine(max_update=20, base_lr=0.5)", "--steps", "30",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(magic)
    assert os.listdir(tmp_path) == [name]


def test_plot_to_an_unknown_format_is_one_line(tmp_path):
    done = run("plot", "cosine(max_update=20, base_lr=0.5)", "--steps",
               "30", "-o", str(tmp_path / "c.xyz"))
    assert done.returncode == 2
    assert "format 'xyz'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_finder_range_that_overflows_names_both_rates():
    with pytest.raises(ValueError, match="end_lr=1e.300 and start_lr=1e-300"):
        lr_finder_schedule(1e-300, 1e300)
