"""Table 1 of a sweep: per model mean ± sample std over seeds, every seed's row, Params/MACs/FPS, the paired
comparison against the reference, the checkpoint comparison; as Markdown, JSON and an IoU-against-FPS plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..core.files import atomic_write_text
from ..visualize import plot_iou_fps
from .aggregate import METRICS, paired_difference, steadiest, summarise
from .runner import RunOutcome
from .spec import CHECKPOINTS, SweepSpec

__all__ = ["build_table", "table_markdown", "save_table"]


def _labels(outcomes: Sequence[RunOutcome]) -> list[str]:
    return list(dict.fromkeys(o.label for o in outcomes))


def build_table(spec: SweepSpec, outcomes: Sequence[RunOutcome], bench: dict[str, Any],
                command: str | None = None) -> dict[str, Any]:
    """The JSON form of the table (everything the Markdown and the plot are drawn from)."""
    chosen = spec.checkpoint
    rows, checkpoints = {}, {}
    for label in _labels(outcomes):
        done = [o for o in outcomes if o.label == label and chosen in o.metrics]
        model = next(o.model for o in outcomes if o.label == label)
        rows[label] = {
            "model": model, "seeds": [o.seed for o in done],
            "summary": summarise({o.seed: o.metrics[chosen] for o in done}),
            "per_seed": {o.seed: {k: s * o.metrics[chosen][k] for k, _, s in METRICS} | {"best_epoch": o.best_epoch}
                         for o in done},
            "bench": bench.get("models", {}).get(model, {}),
        }
        checkpoints[label] = {
            kind: summarise({o.seed: o.metrics[kind] for o in outcomes if o.label == label and kind in o.metrics})["iou"]
            for kind in CHECKPOINTS
        }
    paired = []
    ref = spec.reference
    if ref in rows:
        for label, row in rows.items():
            if label == ref or row["model"] != "sgem_unet" and not label.startswith("sgem"):
                continue  # the paired comparison is of every SGEM-UNet reading against the reference
            for key, title, _ in METRICS:
                paired.append(paired_difference(label, ref, title, {s: v[key] for s, v in row["per_seed"].items()},
                                                {s: v[key] for s, v in rows[ref]["per_seed"].items()}).as_dict())
    readings = {kind: [(c[kind]["mean"], c[kind]["std"]) for c in checkpoints.values() if c[kind]["n"] >= 2]
                for kind in CHECKPOINTS}
    return {
        "schema": "irstd-sweep/1", "sweep": spec.name, "source": spec.source, "command": command,
        "recipe": spec.recipe, "overrides": spec.overrides, "test": spec.test, "checkpoint": chosen,
        "reference": ref, "environment": bench.get("environment", {}), "rows": rows, "paired": paired,
        "checkpoints": checkpoints, "steadiest_checkpoint": steadiest(readings),
        "runs": [o.as_dict() for o in outcomes],
    }


def _pm(s: dict[str, float], digits: int = 2) -> str:
    if not s["n"]:
        return "–"
    if s["n"] < 2:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _bench_cells(b: dict[str, Any]) -> list[str]:
    if not b or b.get("error"):
        return ["–", "–", "–"]
    macs = b.get("macs")
    return [f"{b['params'] / 1e6:.3f}", f"{macs / 1e9:.2f}" if macs else "–",
            f"{b['fps']:.1f}" if b.get("fps") else "–"]


def table_markdown(table: dict[str, Any]) -> str:
    """Table 1 as Markdown."""
    env = table["environment"]
    titles = [t for _, t, _ in METRICS]
    units = {"Fa": "Fa (×10⁻⁶)"}
    size = next((r["bench"].get("size") for r in table["rows"].values() if r["bench"].get("size")), None)
    lines = [
        f"# Sweep `{table['sweep']}`: Table 1",
        "",
        f"Recipe `{table['recipe']}` (overrides {table['overrides'] or 'none'}); test list "
        + (f"`{table['test'].get('split_file') or table['test'].get('split', 'test')}` of `{table['test']['data']}`"
           if table['test'].get('data') else "the synthetic test scenes")
        + f"{', masks corrected from `' + str(table['test']['mask_dir']) + '`' if table['test'].get('mask_dir') else ''}; "
        f"native resolution, threshold 0.5, checkpoint **{table['checkpoint']}**.",
        f"Params, MACs and FPS: `irstd bench` figures (fp32, batch 1, {size}² px) on {env.get('device_name', '?')} "
        f"({env.get('device', '?')}, {env.get('threads', '?')} threads, torch {env.get('torch', '?')})."
        if env else "No Params, MACs or FPS: the sweep has `bench: false`.",
    ]
    if table.get("command"):
        lines += [f"Made by `{table['command']}`."]
    lines += ["", "Mean ± sample standard deviation over seeds (n − 1); percentages except Fa.", "",
              "| model | seeds | " + " | ".join(units.get(t, t + " (%)") for t in titles) + " | Params (M) | GMACs | FPS |",
              "|---|---|" + "---|" * (len(titles) + 3)]
    for label, row in table["rows"].items():
        cells = [_pm(row["summary"][k]) for k, _, _ in METRICS]
        lines.append(f"| {label} | {len(row['seeds'])} | " + " | ".join(cells) + " | " + " | ".join(_bench_cells(row["bench"])) + " |")
    lines += ["", "## Every seed", "", "| model | seed | " + " | ".join(titles) + " | best epoch |",
              "|---|---|" + "---|" * (len(titles) + 1)]
    for label, row in table["rows"].items():
        for seed, v in sorted(row["per_seed"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {label} | {seed} | " + " | ".join(f"{v[k]:.2f}" for k, _, _ in METRICS)
                         + f" | {v.get('best_epoch') or '–'} |")
    if table["paired"]:
        ref = table["reference"]
        lines += ["", f"## Paired against `{ref}`, seed by seed", "",
                  "| model | metric | seeds | mean diff. | sd | 95 % interval | reading |", "|---|---|---|---|---|---|---|"]
        for p in table["paired"]:
            ci = "–" if not math.isfinite(p["ci95"][0]) else f"{p['ci95'][0]:+.2f} to {p['ci95'][1]:+.2f}"
            sd = "–" if not math.isfinite(p["std"]) else f"{p['std']:.2f}"
            reading = {True: "within noise", False: "beyond noise", None: "too few seeds"}[p["within_noise"]]
            lines.append(f"| {p['model']} | {p['metric']} | {len(p['seeds'])} | {p['mean']:+.2f} | {sd} | {ci} | {reading} |")
        lines += [""] + [f"- {p['sentence']}" for p in table["paired"] if p["metric"] == "IoU"]
    lines += ["", "## Checkpoint choice (test IoU %, mean ± sd over seeds, and how many seeds)", "",
              "| model | " + " | ".join(CHECKPOINTS) + " |", "|---|" + "---|" * len(CHECKPOINTS)]
    for label, c in table["checkpoints"].items():
        lines.append(f"| {label} | " + " | ".join(_pm(c[k]) + (f" (n={c[k]['n']})" if c[k]["n"] else "")
                                                 for k in CHECKPOINTS) + " |")
    steady = table["steadiest_checkpoint"]
    lines += ["", f"Steadiest over seeds (lowest mean sd of IoU among the readings whose mean IoU is not below the "
                  f"best mean by more than that reading's sd): **{steady}**." if steady else
              "Steadiest checkpoint: not measurable here (needs two or more seeds of a model with that checkpoint).", ""]
    bad = [r for r in table["runs"] if r["status"] != "finished"]
    if bad:
        lines += ["## Runs not in the table", "", "| run | status | detail |", "|---|---|---|"]
        lines += [f"| {r['name']} | {r['status']} | {r['detail'].replace('|', '/')} |" for r in bad]
    return "\n".join(line for line in lines if line is not None) + "\n"


def save_table(table: dict[str, Any], out_stem: str | Path) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.json`` and ``<stem>.png`` (the plot, when matplotlib is installed)."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, js, png = stem.with_suffix(".md"), stem.with_suffix(".json"), stem.with_suffix(".png")
    atomic_write_text(md, table_markdown(table))
    atomic_write_text(js, json.dumps(table, indent=1, default=str, allow_nan=True))
    written = [md, js]
    if plot_iou_fps(table, png) is not None:
        written.append(png)
    return written
