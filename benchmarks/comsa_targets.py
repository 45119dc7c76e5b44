"""Issue 11's number targets in one figure: deployed / continuous test MSE of Comsa et al. on
MNIST (h = 32, noise 0) at l = 1 and l = 16, before and after deployment-aware fine-tuning,
against the 10% line. Reads what benchmarks/comsa_deploy.py wrote; measures nothing itself.

    .venv/bin/python benchmarks/comsa_targets.py   # -> benchmarks/results/comsa_targets.png

Every ratio's denominator is the plain run's continuous model (the paper's model, exact spike
times, float weights), as in the README's tables.
"""
from __future__ import annotations

import json

from _common import RESULTS_DIR

from spikecodec.train import plots

TARGET = 1.10


def rows() -> list[tuple[str, float]]:
    """``(label, deployed / continuous)`` for every result file present."""
    out = []
    l1 = RESULTS_DIR / "comsa_deploy_mnist_l1.json"
    if l1.is_file():
        r = json.loads(l1.read_text())
        out.append(("l=1, 8-bit export", r["deployed_over_continuous"]))
        if "finetuned" in r:
            out.append(("l=1, fine-tuned", r["finetuned"]["deployed_over_continuous_before"]))
    w8 = RESULTS_DIR / "comsa_deploy_mnist_l1_w8.json"
    if w8.is_file():
        r = json.loads(w8.read_text())
        out.append(("l=1, trained on\nthe weight grid",
                    r["vs_baseline"]["deployed_over_baseline_continuous"]))
    l16 = RESULTS_DIR / "comsa_deploy_mnist_l16.json"
    if l16.is_file():
        r = json.loads(l16.read_text())
        out.append(("l=16, 8-bit export", r["deployed_over_continuous"]))
        if "finetuned" in r:
            out.append(("l=16, fine-tuned", r["finetuned"]["deployed_over_continuous_before"]))
    return out


def main() -> int:
    data = rows()
    fig = plots.new_figure(figsize=(8, 3.4))
    ax = fig.subplots()
    labels = [label for label, _ in data]
    values = [value for _, value in data]
    colors = ["tab:red" if v > TARGET else "tab:green" for v in values]
    ax.bar(range(len(values)), [100 * (v - 1) for v in values], color=colors)
    for i, v in enumerate(values):
        ax.annotate(f"{100 * (v - 1):+.1f}%", (i, 100 * (v - 1)), ha="center", va="bottom",
                    fontsize=8)
    ax.axhline(100 * (TARGET - 1), color="k", ls="--", label="target: within 10%")
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.set_ylabel("deployed vs continuous test MSE (%)")
    ax.legend(loc="upper right")
    fig.suptitle("Comsa AE on MNIST (h = 32) deployed on Loihi 2's grid, 10,000 test digits")
    plots.save_figure(fig, RESULTS_DIR / "comsa_targets.png")
    for label, value in data:
        print(f"{label.replace(chr(10), ' '):<40} {100 * (value - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
