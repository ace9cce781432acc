#!/usr/bin/env python3
"""Summarises bench/search_methods.sh runs: a Markdown table of medians on
stdout and an SVG with (left) the best reward so far per evaluation, median
over seeds, per method, and (right) the size-retention point of every
evaluated candidate. Standard library only.

Usage: search_plot.py RUN_DIR SVG_OUT TARGET MIN_RETENTION BUDGET "SEEDS" METHODS...
RUN_DIR holds METHOD-SEED.json (compress --json) and METHOD-SEED/manifest.json."""
import json
import os
import statistics
import sys

COLORS = {"uniform": "#7f7f7f", "random": "#1f77b4", "evolution": "#2ca02c", "ddpg": "#d62728"}


def load(run_dir, methods, seeds):
    runs = {}
    for m in methods:
        for s in seeds:
            result_path = os.path.join(run_dir, f"{m}-{s}.json")
            manifest_path = os.path.join(run_dir, f"{m}-{s}", "manifest.json")
            if not os.path.exists(result_path):
                continue
            result = json.load(open(result_path))
            manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {"history": []}
            runs.setdefault(m, []).append((result, manifest))
    return runs


def best_reward(history):
    """The best reward among feasible candidates (those meeting the goal), as the job picks its
    result; among all when none is feasible."""
    ok = [c for c in history if c.get("outcome") == "ok"]
    feasible = [c for c in ok if c.get("feasible")]
    return max((c.get("reward", 0) for c in feasible or ok), default=0)


def quality(result):
    """The task's figure: accuracy % for classifiers, perplexity for language models."""
    return result["perplexity"] if "perplexity" in result else 100 * result["accuracy"]


def table(runs, methods, target, retention, budget, seeds):
    first = next(iter(runs.values()))[0][0]
    metric = "perplexity" if "perplexity" in first else "accuracy %"
    out = [f"target size {float(target):.0%}, min retention {float(retention):.0%}, budget {budget} "
           f"evaluations, seeds {' '.join(seeds)}; medians over seeds (final model, test split)\n",
           f"| method | size % | speedup × | retention % | {metric} | best reward | goal met |",
           "|---|---|---|---|---|---|---|"]
    out.append(f"| baseline | 100.0 | 1.00 | 100.0 | {quality(first['baseline']):.2f} | - | - |")
    for m in methods:
        r = runs.get(m, [])
        if not r:
            continue
        med = lambda k: statistics.median(x[0][k] for x in r)
        best = [best_reward(x[1]["history"]) for x in r]
        met = sum(1 for x in r if x[0]["goal_met"])
        name = "uniform (manual)" if m == "uniform" else ("agent (DDPG)" if m == "ddpg" else m)
        out.append(f"| {name} | {100 * med('size_ratio'):.1f} | {med('speedup'):.2f} | "
                   f"{100 * med('retention'):.1f} | {statistics.median(quality(x[0]) for x in r):.2f} | "
                   f"{statistics.median(best):.3f} | {met}/{len(r)} |")
    out.append(f"\nlatency: median of one batch of {first.get('latency_batch', '?')} examples, "
               f"{first.get('threads', '?')} thread(s) per task")
    return "\n".join(out)


def svg(runs, methods, target, retention, path):
    W, H, pad = 980, 420, 60
    pw = (W - 3 * pad) / 2
    ph = H - 2 * pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>']

    def axes(x0, title, xlabel, ylabel, xr, yr):
        parts.append(f'<rect x="{x0}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{pad - 20}" text-anchor="middle" font-size="14">{title}</text>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{H - 15}" text-anchor="middle">{xlabel}</text>')
        parts.append(f'<text x="{x0 - 45}" y="{pad + ph / 2}" text-anchor="middle" '
                     f'transform="rotate(-90 {x0 - 45} {pad + ph / 2})">{ylabel}</text>')
        for i in range(5):
            fx = xr[0] + (xr[1] - xr[0]) * i / 4
            fy = yr[0] + (yr[1] - yr[0]) * i / 4
            px = x0 + pw * i / 4
            py = pad + ph - ph * i / 4
            parts.append(f'<text x="{px}" y="{pad + ph + 15}" text-anchor="middle">{fx:.3g}</text>')
            parts.append(f'<text x="{x0 - 5}" y="{py + 4}" text-anchor="end">{fy:.3g}</text>')

    def mapper(x0, xr, yr):
        def f(x, y):
            return (x0 + pw * (x - xr[0]) / ((xr[1] - xr[0]) or 1),
                    pad + ph - ph * (y - yr[0]) / ((yr[1] - yr[0]) or 1))
        return f

    # Left: best reward so far per evaluation (feasible candidates first), median over seeds.
    curves = {}
    for m in methods:
        per_seed = []
        for _, manifest in runs.get(m, []):
            curve, seen = [], []
            for c in sorted(manifest["history"], key=lambda c: int(c["id"])):
                seen.append(c)
                curve.append(best_reward(seen) if any(x.get("outcome") == "ok" for x in seen) else None)
            per_seed.append(curve)
        if per_seed:
            n = max(len(c) for c in per_seed)
            curves[m] = [statistics.median(c[i] for c in per_seed if i < len(c) and c[i] is not None)
                         for i in range(n) if any(i < len(c) and c[i] is not None for c in per_seed)]
    values = [v for c in curves.values() for v in c]
    if values:
        yr = (min(values), max(values) + 1e-9)
        xr = (1, max(len(c) for c in curves.values()))
        x0 = pad
        axes(x0, "best reward so far (median over seeds)", "evaluation", "reward", xr, yr)
        f = mapper(x0, xr, yr)
        for m, c in curves.items():
            pts = " ".join(f"{f(i + 1, v)[0]:.1f},{f(i + 1, v)[1]:.1f}" for i, v in enumerate(c))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS.get(m, "black")}" stroke-width="2"/>')

    # Right: every evaluated candidate's size and retention.
    pts = [(m, c["evaluation"]["size_ratio"], c["evaluation"]["retention"])
           for m in methods for _, manifest in runs.get(m, []) for c in manifest["history"]
           if c.get("outcome") == "ok"]
    if pts:
        xr = (0, max(max(p[1] for p in pts), float(target)) * 1.05)
        yr = (min(min(p[2] for p in pts), float(retention)) - 0.01, max(1.0, max(p[2] for p in pts)) + 0.005)
        x0 = 2 * pad + pw
        axes(x0, "every candidate: size vs retention", "size ratio (bytes / original)", "retention", xr, yr)
        f = mapper(x0, xr, yr)
        tx, _ = f(float(target), yr[0])
        _, ty = f(xr[0], float(retention))
        parts.append(f'<line x1="{tx}" y1="{pad}" x2="{tx}" y2="{pad + ph}" stroke="black" stroke-dasharray="4"/>')
        parts.append(f'<line x1="{x0}" y1="{ty}" x2="{x0 + pw}" y2="{ty}" stroke="black" stroke-dasharray="4"/>')
        for m, x, y in pts:
            px, py = f(x, y)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{COLORS.get(m, "black")}" fill-opacity="0.6"/>')

    for i, m in enumerate(methods):
        if m in runs:
            parts.append(f'<rect x="{pad + 10 + 110 * i}" y="{pad + 8}" width="12" height="12" fill="{COLORS.get(m, "black")}"/>')
            parts.append(f'<text x="{pad + 26 + 110 * i}" y="{pad + 18}">{m}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    run_dir, svg_out, target, retention, budget, seeds = sys.argv[1:7]
    methods = sys.argv[7:]
    seeds = seeds.split()
    runs = load(run_dir, methods, seeds)
    if not runs:
        sys.exit("no runs found in " + run_dir)
    print(table(runs, methods, target, retention, budget, seeds))
    svg(runs, methods, target, retention, svg_out)
    print(f"\nplot: {svg_out}")


if __name__ == "__main__":
    main()
