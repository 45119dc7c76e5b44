"""Comsa et al. 2021, experiments 2 and 3, from runs that comsa_reconstruction.py trained.

    .venv/bin/python benchmarks/comsa_analysis.py --dataset mnist
        [--embedding 0.0,1,32] [--noise-runs 0.0,1,32 0.4,1,32] [--latencies 0.0,1,32 0.0,16,32]

* **Embeddings** (Fig. 5-7): t-SNE (PCA initialisation, perplexity 20) of the hidden spike
  times of test digits; a Gaussian-kernel SVM trained on the embeddings of training images and
  scored on test images, beside the same SVM on the raw (noisy) pixels, for each noise level
  run; an interpolation between four test digits in embedding space, decoded by the output
  layer.
* **Spike dynamics** (Figs. 8-10), latency 1 vs 16: histograms of hidden and pulse spike times,
  the weight distributions of regular and pulse synapses in both layers, and one output
  neuron's membrane potential over time with its inputs (the paper's claim: regular weights turn
  inhibitory and pulses excitatory at high latency).

Each run is ``benchmarks/results/runs/comsa_<dataset>_<noise>_<latency>_<hidden>/`` (the model
validation chose). Results: ``benchmarks/results/comsa_analysis_<dataset>.json`` and two
figures, ``..._embeddings.png`` and ``..._dynamics.png``.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, RUNS_DIR, environment, write_json_atomic

from spikecodec.train import plots
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.training import load_trained, observed, potential
from spikecodec.train.seeds import stream_seed

SVM_TRAIN, SVM_TEST, TSNE_SAMPLES = 5000, 2000, 2000


def load(dataset: str, condition: str, data_dir: str):
    cfg, model = load_trained(RUNS_DIR / f"comsa_{dataset}_{condition.replace(',', '_')}")
    data = data_mod.load_data(dataclasses.replace(cfg.data, data_dir=data_dir),
                              seed=stream_seed(cfg.train.seed, "noise"))  # the run's draw
    return cfg, model.double().eval(), data


def codes(model, times: torch.Tensor) -> np.ndarray:
    """Hidden spike times as features; a silent hidden neuron reads as the latest time + 1."""
    with torch.no_grad():
        h = torch.cat([model.encoder(times[i:i + 1000]) for i in range(0, len(times), 1000)])
    late = float(h[torch.isfinite(h)].max()) + 1.0 if torch.isfinite(h).any() else 2.0
    return torch.where(torch.isinf(h), torch.full_like(h, late), h).numpy()


def embeddings(dataset: str, conditions: list[str], data_dir: str, fig_path) -> dict:
    from sklearn.manifold import TSNE
    from sklearn.svm import SVC

    out = {}
    first = None
    for condition in conditions:
        cfg, model, data = load(dataset, condition, data_dir)
        tr, te = data.inputs["train"][:SVM_TRAIN], data.inputs["test"][:SVM_TEST]
        ytr, yte = data.labels["train"][:SVM_TRAIN], data.labels["test"][:SVM_TEST]
        ctr, cte = codes(model, tr), codes(model, te)
        pixels = lambda t: (1.0 - torch.where(torch.isinf(t), 1.0, t)).numpy()  # noqa: E731
        acc_emb = SVC(kernel="rbf").fit(ctr, ytr).score(cte, yte)
        acc_pix = SVC(kernel="rbf").fit(pixels(tr), ytr).score(pixels(te), yte)
        out[condition] = {"noise": cfg.data.noise, "svm_embedding": acc_emb,
                          "svm_pixels": acc_pix, "svm_train": len(tr), "svm_test": len(te)}
        print(f"{condition}: SVM accuracy from embeddings {acc_emb:.4f}, from pixels "
              f"{acc_pix:.4f} ({len(tr)} train / {len(te)} test)")
        if first is None:
            first = (condition, cfg, model, data, cte, yte)
    condition, cfg, model, data, cte, yte = first
    tsne = TSNE(n_components=2, init="pca", perplexity=20, random_state=0)
    xy = tsne.fit_transform(cte[:TSNE_SAMPLES])
    fig = plots.new_figure(figsize=(15, 5))
    ax = fig.subplots(1, 3)
    sc = ax[0].scatter(xy[:, 0], xy[:, 1], c=yte[:TSNE_SAMPLES].numpy(), cmap="tab10", s=4)
    ax[0].legend(*sc.legend_elements(), fontsize=6, title="digit", loc="best")
    ax[0].set(title=f"t-SNE of hidden spike times ({condition})")
    noises = [v["noise"] for v in out.values()]
    ax[1].plot(noises, [v["svm_embedding"] for v in out.values()], "o-", label="embedding")
    ax[1].plot(noises, [v["svm_pixels"] for v in out.values()], "s--", label="pixels")
    ax[1].set(title="Gaussian-kernel SVM accuracy", xlabel="noise factor", ylabel="accuracy")
    ax[1].legend()
    ax[1].grid(alpha=0.3)
    ax[2].imshow(interpolation_grid(cfg, model, data), cmap="gray")
    ax[2].set(title="interpolation between four test digits")
    ax[2].axis("off")
    fig.tight_layout()
    plots.save_figure(fig, fig_path)
    return out


def interpolation_grid(cfg, model, data, steps: int = 7) -> np.ndarray:
    """Bilinear interpolation of four test digits' hidden times, decoded (Fig. 6)."""
    corners = data.inputs["test"][[0, 1, 2, 3]]
    with torch.no_grad():
        h = model.encoder(corners)
        late = float(h[torch.isfinite(h)].max()) + 1.0 if torch.isfinite(h).any() else 2.0
        h = torch.where(torch.isinf(h), torch.full_like(h, late), h)
        rows = []
        for a in np.linspace(0, 1, steps):
            row = []
            for b in np.linspace(0, 1, steps):
                mix = ((1 - a) * (1 - b) * h[0] + (1 - a) * b * h[1] + a * (1 - b) * h[2]
                       + a * b * h[3])
                t = model.decoder(mix[None])
                img = (1.0 - observed(t, cfg.model.latency)).clamp(0, 1)
                row.append(img.view(*data.image_shape).numpy())
            rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)


def dynamics(dataset: str, conditions: list[str], data_dir: str, fig_path) -> dict:
    out = {}
    fig = plots.new_figure(figsize=(5 * len(conditions), 10))
    ax = fig.subplots(3, len(conditions), squeeze=False)
    for col, condition in enumerate(conditions):
        cfg, model, data = load(dataset, condition, data_dir)
        x = data.inputs["test"][:1000]
        with torch.no_grad():
            hidden = model.encoder(x)
        hid = hidden[torch.isfinite(hidden)].numpy()
        pulses = torch.cat([model.encoder.pulse_times, model.decoder.pulse_times]).detach()
        lat = cfg.model.latency
        ax[0, col].hist(hid, bins=50, alpha=0.7, label="hidden spikes", density=True)
        for i, p in enumerate(pulses.numpy()):
            ax[0, col].axvline(p, color="C3", lw=1, label="pulses" if i == 0 else None)
        ax[0, col].set(title=f"l={lat:g}: spike times", xlabel="time")
        ax[0, col].legend(fontsize=7)
        weights = {}
        for name, layer in (("encoder", model.encoder), ("decoder", model.decoder)):
            w, pw = layer.weight.detach().numpy().ravel(), layer.pulse_weight.detach().numpy()
            weights[name] = {"regular_mean": float(w.mean()), "pulse_mean": float(pw.mean()),
                             "regular_negative_fraction": float((w < 0).mean()),
                             "pulse_positive_fraction": float((pw > 0).mean())}
            ax[1, col].hist(w, bins=60, alpha=0.5, density=True, label=f"{name} regular")
            ax[1, col].hist(pw.ravel(), bins=30, alpha=0.5, density=True,
                            label=f"{name} pulses")
        ax[1, col].set(title=f"l={lat:g}: weights", xlabel="weight")
        ax[1, col].legend(fontsize=6)
        # one output neuron of test sample 0: a digit pixel near the centre
        k = int(np.argmin(data.targets["test"][0].numpy()))
        t_in = torch.cat([hidden[0], model.decoder.pulse_times.detach()])
        w_in = torch.cat([model.decoder.weight[k], model.decoder.pulse_weight[k]]).detach()
        grid = torch.linspace(0, lat + 2.0, 600, dtype=torch.float64)
        v = potential(grid, t_in, w_in, cfg.model.decay)
        with torch.no_grad():
            t_k = model.decoder(hidden[:1])[0, k].item()
        n_h = hidden.shape[1]
        ax[2, col].plot(grid.numpy(), v.numpy(), label="V(t)")
        ax[2, col].plot(grid.numpy(), potential(grid, t_in[n_h:], w_in[n_h:],
                                                cfg.model.decay).numpy(), ":", label="pulses only")
        ax[2, col].axhline(cfg.model.threshold, color="grey", ls="--", label="threshold")
        ax[2, col].axvline(lat + data.targets["test"][0, k].item(), color="C2", ls="-.",
                           label="target")
        ax[2, col].set(title=f"l={lat:g}: output neuron {k}, spike at {t_k:.2f}",
                       xlabel="time")
        ax[2, col].legend(fontsize=6)
        out[condition] = {"latency": lat, "hidden_spike_time_mean": float(hid.mean()),
                          "pulse_times": pulses.numpy().tolist(), "weights": weights}
        print(f"{condition}: hidden spikes at mean t={hid.mean():.3f}, pulses "
              f"{np.round(pulses.numpy(), 2).tolist()}, weight means " +
              ", ".join(f"{n} regular {v['regular_mean']:+.3f} / pulse {v['pulse_mean']:+.3f}"
                        for n, v in weights.items()))
    fig.tight_layout()
    plots.save_figure(fig, fig_path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--noise-runs", nargs="+", default=["0.0,1,32", "0.4,1,32"])
    parser.add_argument("--latencies", nargs="+", default=["0.0,1,32", "0.0,16,32"])
    args = parser.parse_args()
    base = RESULTS_DIR / f"comsa_analysis_{args.dataset}"
    torch.set_grad_enabled(False)
    results = {"embeddings": embeddings(args.dataset, args.noise_runs, args.data_dir,
                                        base.with_name(base.name + "_embeddings.png")),
               "dynamics": dynamics(args.dataset, args.latencies, args.data_dir,
                                    base.with_name(base.name + "_dynamics.png")),
               "environment": environment()}
    write_json_atomic(base.with_suffix(".json"), results)
    print(f"wrote {base.with_suffix('.json')} and two figures")


if __name__ == "__main__":
    main()
