"""Text reports of the workflows: deployment, evaluation and parity tables."""
from __future__ import annotations

from typing import Any


def format_deployment(results: dict[str, Any]) -> str:
    ref, lava = results["reference"], results["lava_sim"]
    fmt = "{:<34} {:>12}"
    lines = [f"deployed {results['network']} (T={results['num_steps']}) on "
             f"{results['test_samples']} test samples",
             fmt.format("float model test MSE", f"{results['float']['mse']:.4f}"),
             fmt.format("deployed (reference) test MSE", f"{ref['mse']:.4f}")]
    if lava is not None:
        agree = min(lava["agreement_with_reference"].values())
        lines += [fmt.format(f"Lava sim MSE ({lava['samples']} samples)", f"{lava['mse']:.4f}"),
                  fmt.format("reference vs Lava spike agreement", f"{100 * agree:.2f}%"),
                  fmt.format("  samples identical", f"{lava['samples_equal']}/{lava['samples']}")]
    spikes = ", ".join(f"{k} {v:.1f}" for k, v in ref["spikes_per_sample"].items())
    lines += [fmt.format("spikes per sample", spikes),
              fmt.format("synaptic ops per sample", f"{ref['synops_per_sample']:.0f}"),
              fmt.format("reference engine", f"{ref['samples_per_second']:.0f} samples/s")]
    if lava is not None:
        lines.append(fmt.format("Lava simulator (start-up included)",
                                f"{lava['samples_per_second']:.1f} samples/s"))
    return "\n".join(lines)


def same_samples(metrics: dict[str, Any], training: list[tuple[str, dict[str, Any]]], *,
                 split: str, samples: int | None) -> bool:
    """Whether an evaluation of the first ``samples`` of ``split`` (``metrics``) ran on the
    samples every training row scored: the number a row says, else the whole test split."""
    n = metrics["samples"]
    return split == "test" and all(m["samples"] == n if "samples" in m else samples is None
                                   for _, m in training)


def format_evaluation(metrics: dict[str, Any], training: list[tuple[str, dict[str, Any]]], *,
                      same_samples: bool) -> str:
    """An evaluation beside what the training run measured (stored in the export).

    ``same_samples``: whether this evaluation ran on the samples the training run scored; when
    not, the training rows say so, so nobody compares figures of different sets unawares.
    """
    keys = [k for k, v in metrics.items() if k in _SCORE_KEYS or k.endswith("_accuracy")]
    lines = [f"{metrics['backend']} on {metrics['samples']} {metrics['data']} samples: "
             f"{metrics['samples_per_second']:.1f} samples/s"]
    rows = []
    for label, m in training:
        note = "" if same_samples else ", other samples"
        if "samples" in m:
            note = f", {m['samples']} samples" + ("" if same_samples else " (another set)")
        rows.append((f"{label} (training{note})", m))
    rows.append((f"{metrics['backend']} (deployed)", metrics))
    width = max(len(label) for label, _ in rows)
    lines.append(" " * width + "".join(f" {k:>14}" for k in keys))
    for label, m in rows:
        cells = "".join(f" {m[k]:>14.4f}" if isinstance(m.get(k), (int, float))
                        else f" {'-':>14}" for k in keys)
        lines.append(f"{label:<{width}}{cells}")
    spikes = ", ".join(f"{k} {v:.1f}" for k, v in metrics["spikes_per_sample"].items())
    lines.append(f"spikes per sample: {spikes}; synaptic ops per sample "
                 f"{metrics['synops_per_sample']:.0f}")
    return "\n".join(lines)


def format_file_evaluation(metrics: dict[str, Any], *, target: Any = None) -> str:
    """An evaluation of a spike file (:func:`spikecodec.workflows.spikefiles.evaluate_file`)."""
    metric = metrics["metric"]
    against = f"target {target}" if target else "the input spikes (no --target)"
    spikes = ", ".join(f"{k} {v:.1f}" for k, v in metrics["spikes_per_sample"].items())
    return "\n".join([
        f"{metrics['backend']} on {metrics['samples']} samples of {metrics['data']}: "
        f"{metrics['samples_per_second']:.1f} samples/s",
        f"{metric} against {against}: {metrics[metric]:.4f}",
        f"spikes per sample: {spikes}"])


# metrics shown as columns by format_evaluation (besides any *_accuracy)
_SCORE_KEYS = ("mse", "spike_mse", "readout_spikes_per_sample")


def format_parity(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    lines = [f"parity on {report['samples']} samples (agreement with the reference engine)",
             f"{'engine':<10} {'layer':<10} {'agreement':>10} {'equal samples':>14} "
             f"{'spikes':>9} {report['metric']:>10}"]
    for row in report["engines"]:
        for i, layer in enumerate(row["layers"]):
            metric = f"{row['metric']:.4f}" if i == len(row["layers"]) - 1 else ""
            lines.append(f"{row['engine'] if i == 0 else '':<10} {layer['layer']:<10} "
                         f"{100 * layer['agreement']:>9.3f}% "
                         f"{layer['samples_equal']:>7}/{report['samples']:<6} "
                         f"{layer['spikes']:>9} {metric:>10}")
    if report.get("u_wraps") is not None:
        lines.append(f"Lava arithmetic the training model does not have: current wraps "
                     f"{report['u_wraps']}, voltage clips {report['v_clips']}")
    lines.extend(report.get("details", {}).get("text", []))
    lines.extend(report["notes"])
    return "\n".join(lines)
