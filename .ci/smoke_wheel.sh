#!/usr/bin/env bash
# The package as users install it.  Builds the sdist and the wheel
# (`python -m build`: the wheel is built from the sdist, so both must be
# complete), installs the wheel -- not editable -- with the four
# frameworks and what the commands need (extras torch, tensorflow, mxnet,
# jax, plot, data; EXTRAS to change) into a fresh virtual environment,
# and runs the commands from a folder outside the repository, so that
# nothing can come from the source tree:
#   * `unisched values` (its CSV checked against known values);
#   * a short `unisched train` in each framework (digits, one epoch; the
#     four at once): the rate every update applied must be the schedule's;
#   * `unisched chapter` on one epoch: the report and its figures.
# Needs the package registry (build's isolated environment, the wheel's
# dependencies; a warm pip cache makes it quick).
#
# Usage: .ci/smoke_wheel.sh [all|install|run]
#   all (the default): both phases, in a temporary folder removed at the
#       end (KEEP=1 keeps it and prints its path);
#   install, then run: the two phases apart, in the folder SMOKE_WORK
#       names (.ci/run installs while the test environment installs).
# PYTHON=python3.11 picks the interpreter; CHAPTER_FRAMEWORKS=torch runs
# the chapter in fewer frameworks.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PHASE="${1:-all}"
case "$PHASE" in
    all)
        WORK="$(mktemp -d "${TMPDIR:-/tmp}/unisched-smoke.XXXXXX")"
        if [ "${KEEP:-0}" = 1 ]; then
            echo "work folder: $WORK"
        else
            trap 'rm -rf "$WORK"' EXIT
        fi ;;
    install|run)
        WORK="${SMOKE_WORK:?SMOKE_WORK must name the work folder}"
        mkdir -p "$WORK" ;;
    *)
        echo "usage: $0 [all|install|run], got '$PHASE'" >&2
        exit 2 ;;
esac
start=$SECONDS
step() { echo "== [$((SECONDS - start)) s] $*"; }

install() {
    step "build the sdist and the wheel"
    rm -rf "$WORK/build-env" "$WORK/dist" "$WORK/venv"
    "$PYTHON" -m venv "$WORK/build-env"
    "$WORK/build-env/bin/pip" install --quiet "build==1.6.1" \
        > "$WORK/pip.log" 2>&1 || { tail -40 "$WORK/pip.log"; exit 1; }
    "$WORK/build-env/bin/python" -m build --outdir "$WORK/dist" "$ROOT" \
        > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
    ls "$WORK/dist"
    local wheel=("$WORK"/dist/unisched-*.whl)
    [ -f "${wheel[0]}" ] && [ -f "$(ls "$WORK"/dist/unisched-*.tar.gz)" ]

    local extras="${EXTRAS:-torch,tensorflow,mxnet,jax,plot,data}"
    step "install the wheel with [$extras] into a fresh venv"
    "$PYTHON" -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet --no-compile \
        "${wheel[0]}[$extras]" > "$WORK/pip.log" 2>&1 \
        || { tail -40 "$WORK/pip.log"; exit 1; }
    step "installed"
}

run() {
    bin="$WORK/venv/bin"
    [ -x "$bin/unisched" ] \
        || { echo "no installed wheel in $WORK: run 'install' first" >&2
             exit 1; }
    rm -rf "$WORK/run"
    mkdir "$WORK/run"
    cd "$WORK/run"    # outside the repository: no source tree to import
    "$bin/python" - "$WORK/venv" <<'EOF'
import sys, unisched, unisched.app.chapter as chapter
venv = sys.argv[1]
assert unisched.__file__.startswith(venv), unisched.__file__
assert chapter.DEFAULT_CHAPTER.is_file(), chapter.DEFAULT_CHAPTER
print("unisched", unisched.__version__, "from", unisched.__file__)
EOF

    step "unisched values"
    local spec="cosine(max_update=20, base_lr=0.5, final_lr=0.01, warmup_steps=5)"
    "$bin/unisched" values "$spec" --steps 21 > values.csv
    "$bin/python" - <<'EOF'
import csv
rows = {int(r["step"]): float(r["lr"])
        for r in csv.DictReader(open("values.csv"))}
assert sorted(rows) == list(range(21)), sorted(rows)
assert (rows[0], rows[5], rows[20]) == (0.0, 0.5, 0.01), rows
assert abs(rows[2] - 0.2) < 1e-15, rows[2]
print("values: 21 rows, 0.0 at 0, 0.5 at 5, 0.01 at 20")
EOF

    # 8 updates of 64 images: the rate each update applied, read back
    # from the run's record, must be the schedule's at that update.  The
    # four frameworks train at once: each run is mostly its import.
    local train="cosine(max_update=8, base_lr=0.1, final_lr=0.01, warmup_steps=2)"
    local frameworks=(torch keras mxnet jax) pids=() i fw
    step "unisched train --framework ${frameworks[*]} (at once)"
    for fw in "${frameworks[@]}"; do
        "$bin/unisched" train --framework "$fw" --schedule "$train" \
            --data digits --epochs 1 --limit 512 --batch-size 64 \
            --out "train-$fw" > "train-$fw.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!frameworks[@]}"; do
        fw="${frameworks[$i]}"
        wait "${pids[$i]}" || { echo "unisched train --framework $fw failed"
                                tail -30 "train-$fw.log"
                                kill "${pids[@]}" 2> /dev/null; exit 1; }
        tail -1 "train-$fw.log"
        "$bin/python" - "$fw" "$train" <<'EOF'
import json, sys
import unisched as us
fw, spec = sys.argv[1], sys.argv[2]
updates = json.load(open(f"train-{fw}/{fw}.json"))["updates"]
sched = us.parse(spec)
want = [sched(k) for k in range(8)]
got = [lrs[0] for lrs in updates["lr"]]
assert updates["step"] == list(range(8)), updates["step"]
assert max(abs(g - w) for g, w in zip(got, want, strict=True)) < 1e-6, \
    (got, want)
print(f"{fw}: 8 updates at the schedule's rates {[round(g, 4) for g in got]}")
EOF
    done

    step "unisched chapter (one epoch)"
    "$bin/unisched" chapter --epochs 1 --limit 1024 --num-it 20 \
        --frameworks "${CHAPTER_FRAMEWORKS:-torch,keras,mxnet,jax}" \
        --out chapter > chapter.log 2>&1 || { tail -30 chapter.log; exit 1; }
    tail -3 chapter.log
    test -s chapter/report.md || { ls -R chapter; exit 1; }
    grep -c "!\[" chapter/report.md | sed "s/^/figures linked: /"
    ls chapter/figures/*.png > /dev/null
    step "done: the wheel installs and runs values, train (4 frameworks)" \
        "and chapter"
}

case "$PHASE" in
    all) install; run ;;
    install) install ;;
    run) run ;;
esac
