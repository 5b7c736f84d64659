"""Schedule plots drawn at build time from the schedules themselves.

A page asks for a plot with a fenced block::

    ```unisched-plot
    steps: 120
    cosine: cosine(max_update=100, base_lr=0.5, final_lr=0.01)
    with warmup: warmup(cosine(max_update=80, base_lr=0.5), warmup_steps=20)
    ```

Every ``label: spec`` line is parsed by :func:`unisched.parse` and drawn
by :func:`unisched.plot.plot_schedules` over ``steps`` updates.  Options:
``steps`` (required), ``momentum: true`` (a second panel with the
schedules' momentum cycles), ``log: true`` (a log rate axis) and, for a
``ReduceOnPlateau``, ``observe: EVERY; m0, m1, ...`` (the metric
``m_i`` is observed after ``EVERY * (i + 1)`` updates, so the plot shows
the rate the schedule then gives; other schedules in the plot are drawn
as they are).  The block becomes the PNG and a
caption quoting the specs, so a reader sees exactly what was drawn.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FENCE = re.compile(r"^```unisched-plot[ \t]*\n(?P<body>.*?)^```[ \t]*$",
                   re.M | re.S)
OPTIONS = ("steps", "momentum", "log", "observe")


@dataclass(frozen=True)
class PlotRequest:
    """One ``unisched-plot`` block, parsed."""

    curves: tuple[tuple[str, str], ...]   # (label, spec)
    steps: int
    momentum: bool = False
    log: bool = False
    observe: tuple[int, tuple[float, ...]] | None = None

    @property
    def name(self) -> str:
        """A file name that changes whenever the request does."""
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:16]
        return f"plot-{digest}.png"


def _flag(key: str, text: str, where: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"{where}: {key} must be true or false, got "
                         f"{text!r}")
    return text.lower() == "true"


def parse_block(body: str, where: str) -> PlotRequest:
    """Parse a block's lines (``where`` names the page in errors)."""
    curves, options = [], {}
    for line in filter(None, (ln.strip() for ln in body.splitlines())):
        key, sep, value = line.partition(":")
        if not sep or not value.strip():
            raise ValueError(f"{where}: a plot line must read 'label: "
                             f"spec' or 'option: value', got {line!r}")
        key, value = key.strip(), value.strip()
        if key in OPTIONS:
            options[key] = value
        else:
            curves.append((key, value))
    if not curves or "steps" not in options:
        raise ValueError(f"{where}: a plot needs 'steps: N' and at least "
                         f"one 'label: spec' line, got {body!r}")
    observe = None
    if "observe" in options:
        every, _, metrics = options["observe"].partition(";")
        observe = (int(every), tuple(float(m) for m in metrics.split(",")))
    return PlotRequest(
        tuple(curves), int(options["steps"]),
        _flag("momentum", options.get("momentum", "false"), where),
        _flag("log", options.get("log", "false"), where), observe)


def find(markdown: str, where: str) -> list[tuple[re.Match, PlotRequest]]:
    """Every plot block of a page, with its match."""
    return [(m, parse_block(m.group("body"), where))
            for m in FENCE.finditer(markdown)]


def _observed_rates(sched, steps: np.ndarray, observe) -> np.ndarray:
    """The rate of every update while a plateau sees one metric every
    ``every`` updates (the schedule's own ``observe``); a schedule that
    observes nothing gives its values."""
    if not sched.stateful:
        return sched.values(steps)
    every, metrics = observe
    rates = np.empty(len(steps))
    for k in steps:
        rates[k] = sched(int(k))
        i = (k + 1) // every - 1
        if (k + 1) % every == 0 and i < len(metrics):
            sched.observe(metrics[i])
    return rates


def draw(request: PlotRequest, path: Path) -> None:
    """Render ``request`` to the PNG ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import unisched
    from unisched.plot import plot_schedules, save_figure

    scheds = {label: unisched.parse(spec) for label, spec in request.curves}
    panels = 2 if request.momentum else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 3.4),
                             squeeze=False)
    if request.observe is not None:
        steps = np.arange(request.steps)
        for label, sched in scheds.items():
            axes[0, 0].plot(steps, _observed_rates(sched, steps,
                                                   request.observe),
                            label=label)
        axes[0, 0].set(xlabel="update", ylabel="learning rate")
        axes[0, 0].grid(True, alpha=0.3)
        axes[0, 0].legend(fontsize="small")
    else:
        plot_schedules(scheds, request.steps, ax=axes[0, 0])
    if request.momentum:
        plot_schedules(scheds, request.steps, ax=axes[0, 1], momentum=True)
    if request.log:
        axes[0, 0].set_yscale("log")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, str(path))
    plt.close(fig)


def caption(request: PlotRequest) -> str:
    """Markdown under the image: what was drawn, from which specs."""
    specs = "; ".join(f"{label}: `{spec}`" for label, spec in
                      request.curves)
    extra = " (and its momentum cycle)" if request.momentum else ""
    if request.observe is not None:
        every, metrics = request.observe
        extra += (f", observing the metrics {list(metrics)} one every "
                  f"{every} updates")
    return (f"*Drawn at build time by `unisched.plot` over "
            f"{request.steps} updates{extra}.  {specs}*")
