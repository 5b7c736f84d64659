"""The package as users install it: the wheel holds every module of the
source tree (each backend subpackage included) and the chapter, so that a
regular (non-editable) install runs everything the commands need, and
type checkers see its annotations (``py.typed``)."""
import glob
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_wheel_ships_every_module_and_the_chapter(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    wheel, = glob.glob(str(tmp_path / "unisched-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    # the chapter the `chapter` command runs; the PEP 561 marker that
    # lets type checkers read the package's annotations
    expected = {"unisched/app/lr_scheduling.md", "unisched/py.typed"}
    for source, package in (("unisched", "unisched"),
                            ("backends", "unisched/backends")):
        for path in glob.glob(os.path.join(ROOT, source, "**", "*.py"),
                              recursive=True):
            rel = os.path.relpath(path, os.path.join(ROOT, source))
            expected.add(f"{package}/{rel}".replace(os.sep, "/"))
    assert sorted(expected - shipped) == []
