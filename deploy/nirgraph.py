"""NIR (the Neuromorphic Intermediate Representation, the ``nir`` package) in and out.

**Time.** NIR nodes are continuous-time ODEs; every framework picks a step ``dt`` and integrates
them with forward Euler. snnTorch's importer and exporter fix ``dt = 1e-4`` and Norse's take
``dt`` as an argument (default ``1e-3``); we use ``dt = 1e-4`` (:data:`DT`) in both directions
and store it in the graph's metadata, so a graph we write loads in snnTorch unchanged and in
Norse with ``from_nir(graph, dt=1e-4)``. One Euler step of a ``CubaLIF`` node is::

    I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in (W s[t] + b)
    v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) (v_leak + r I[t])
    s'[t] = v[t] > v_threshold;  v[t] = v_reset where s'[t]

which is Loihi's CUBA neuron (:mod:`spikecodec.lava_procs.cuba`) with ``iDecay = 4096 dt /
tau_syn``, ``vDecay = 4096 dt / tau_mem``, weights ``W * w_in dt/tau_syn * r dt/tau_mem`` and a
voltage bias ``dt/tau_mem * v_leak``, minus Loihi's rounding of the decayed state towards zero.
A ``LIF`` node is the same with the current forgotten every step (``iDecay = 4096``); an ``IF``
node has no leak (``vDecay = 0``) and adds ``r I`` per step (Norse's reading; ``dt`` unused).

**Export** (:func:`to_nir`): each layer kind's ``to_nir`` hook gives its nodes; a dense CUBA
layer becomes ``Linear`` (its integer weights) + ``CubaLIF`` (threshold ``vThMant``, ``w_in`` and
``r`` making both input gains 1, ``v_leak`` the bias), in the export's own integer units. A kind
without a NIR node (the stochastic readout) is refused with a :class:`~spikecodec.errors.NIRError`
naming the layer; so is a decay of 0 (an infinite time constant).

**Import** (:func:`read_graph`, :func:`parse_graph`, :func:`from_nir`): a chain ``Input ->
(Affine|Linear -> CubaLIF|LIF|IF)* -> Output``. Bad graphs -- unknown nodes, branches, cycles,
dangling edges, mismatched shapes, non-finite values, per-neuron time constants (one Loihi layer
has one iDecay/vDecay), ``v_reset != 0``, a bias into a decaying synapse (Loihi adds biases to
the voltage) -- raise :class:`~spikecodec.errors.NIRError` naming the node. Each layer becomes a
:class:`FloatCuba` (thresholds normalised to 1), which the dense kind's ``from_nir`` quantizes
(reporting what rounding changed); :func:`simulate` runs the float chain for the agreement figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikecodec.errors import NIRError

DT = 1e-4  # the Euler step we read and write NIR with (snnTorch's; Norse: pass dt=1e-4)
SYNAPSES = ("Affine", "Linear")
NEURONS = ("CubaLIF", "LIF", "IF")


@dataclass(frozen=True)
class FloatCuba:
    """One imported layer in float: ``I = alpha I + W s``, ``v = beta v + I + bias``, spike
    where ``v > threshold``, reset to 0, in the graph's own units. ``nodes`` names its NIR
    nodes."""

    name: str
    weight: np.ndarray  # (out, in) float64, already times every input gain
    bias: np.ndarray  # (out,) added to v each step
    threshold: np.ndarray  # (out,) > 0
    alpha: float  # current kept per step, 0..1
    beta: float  # voltage kept per step, 0..1
    nodes: tuple[str, ...] = ()

    @property
    def normalised(self) -> tuple[np.ndarray, np.ndarray]:
        """``(weight, bias)`` in units of each neuron's threshold (what Loihi's one
        threshold per layer needs)."""
        return self.weight / self.threshold[:, None], self.bias / self.threshold

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


# --------------------------------------------------------------------------- export

def to_nir(net, *, dt: float = DT):
    """``net`` (a :class:`~spikecodec.deploy.ir.FixedPointNetwork`) as a ``nir.NIRGraph``;
    :class:`NIRError` naming the first layer whose kind has no NIR node."""
    import nir

    from spikecodec import __version__

    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a positive number, got {dt!r}")
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([net.in_features])})}
    edges: list[tuple[str, str]] = []
    previous = "input"
    for layer in net.layers:
        if getattr(type(layer), "to_nir", None) is None:
            raise NIRError(f"layer {layer.name!r} (kind {layer.kind}) has no NIR node: NIR "
                           f"describes no {layer.kind} neuron; export a network of dense CUBA "
                           f"layers only, or run this one with NetX (spikecodec bundle)")
        for key, node in layer.to_nir(dt=dt):
            if key in nodes:
                raise NIRError(f"layer {layer.name!r}: NIR node name {key!r} is taken twice")
            nodes[key] = node
            edges.append((previous, key))
            previous = key
    nodes["output"] = nir.Output(output_type={"output": np.array([net.out_features])})
    edges.append((previous, "output"))
    metadata = {"source": "spikecodec", "spikecodec_version": __version__, "dt": float(dt),
                "num_steps": int(net.num_steps)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_graph(graph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` atomically (``nir.write``)."""
    import nir

    from spikecodec.atomic import atomic_path

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    return Path(path)


def dense_nodes(name: str, weight: np.ndarray, bias: np.ndarray | None, i_decay: int,
                v_decay: int, v_th_mant: int, *, dt: float = DT) -> list[tuple[str, Any]]:
    """``Linear`` + ``CubaLIF`` nodes of a dense CUBA layer in its integer units (module
    docstring); :class:`NIRError` for a decay of 0, which has no finite time constant."""
    import nir

    for field_name, decay in (("iDecay", i_decay), ("vDecay", v_decay)):
        if decay == 0:
            raise NIRError(f"layer {name!r}: {field_name} = 0 (the state never decays) has no "
                           f"finite NIR time constant")
    n = weight.shape[0]
    ones = np.ones(n)
    tau_syn = dt * 4096 / i_decay * ones
    tau_mem = dt * 4096 / v_decay * ones
    v_leak = np.zeros(n) if bias is None else np.asarray(bias, np.float64) * 4096 / v_decay
    return [(f"{name}_linear", nir.Linear(weight=np.asarray(weight, np.float64))),
            (f"{name}_lif", nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt,
                                        v_leak=v_leak, v_threshold=float(v_th_mant) * ones,
                                        v_reset=np.zeros(n), w_in=tau_syn / dt))]


# --------------------------------------------------------------------------- import

def read_graph(path: str | Path):
    """``nir.read(path)`` with every failure a :class:`NIRError` naming the file."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NIRError(f"NIR file {path}: no such file")
    try:
        return nir.read(str(path))
    except Exception as err:  # nir raises KeyError, AssertionError, OSError, ValueError ...
        raise NIRError(f"NIR file {path}: cannot be read as a NIR graph "
                       f"({type(err).__name__}: {err})") from None


def _array(node_name: str, node: Any, attr: str, size: int | None = None) -> np.ndarray:
    value = getattr(node, attr, None)
    if value is None:
        raise NIRError(f"NIR node {node_name!r} ({type(node).__name__}): missing {attr}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRError(f"NIR node {node_name!r}: {attr} is not numeric") from None
    if not np.isfinite(arr).all():
        raise NIRError(f"NIR node {node_name!r} ({type(node).__name__}): {attr} has non-finite "
                       f"values")
    if size is not None:
        if arr.ndim == 0:
            arr = np.full(size, float(arr))
        arr = arr.reshape(-1) if arr.size == size else arr
        if arr.shape != (size,):
            raise NIRError(f"NIR node {node_name!r} ({type(node).__name__}): {attr} has shape "
                           f"{np.shape(value)}, expected {size} values (one per neuron of the "
                           f"synapse before it)")
    return arr


def _chain(graph) -> list[str]:
    """The node names from Input to Output, or a :class:`NIRError` naming what breaks it."""
    nodes = graph.nodes
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for edge in graph.edges:
        src, dst = edge[0], edge[1]
        for end in (src, dst):
            if end not in nodes:
                raise NIRError(f"NIR edge {src!r} -> {dst!r}: no node called {end!r}")
        succ[src].append(dst)
        pred[dst].append(src)
    _refuse_cycles(succ)
    kinds = {k: type(v).__name__ for k, v in nodes.items()}
    for name, kind in kinds.items():
        if kind not in ("Input", "Output") + SYNAPSES + NEURONS:
            raise NIRError(f"NIR node {name!r} is a {kind}, which spikecodec does not import "
                           f"(supported: Affine, Linear, CubaLIF, LIF, IF in a feed-forward "
                           f"chain)")
        if len(succ[name]) > 1 or len(pred[name]) > 1:
            raise NIRError(f"NIR node {name!r} has {len(pred[name])} inputs and "
                           f"{len(succ[name])} outputs: only a feed-forward chain maps to a "
                           f"NetX network")
    inputs = [k for k, kind in kinds.items() if kind == "Input"]
    outputs = [k for k, kind in kinds.items() if kind == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the NIR graph needs one Input and one Output node, has inputs "
                       f"{inputs} and outputs {outputs}")
    order = [inputs[0]]
    while succ[order[-1]]:
        order.append(succ[order[-1]][0])
    unreached = sorted(set(nodes) - set(order))
    if order[-1] != outputs[0] or unreached:
        raise NIRError(f"NIR nodes {unreached or [order[-1]]} are not on the path from "
                       f"{inputs[0]!r} to {outputs[0]!r}")
    return order


def _refuse_cycles(succ: dict[str, list[str]]) -> None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in succ:
        if state.get(start):
            continue
        stack = [(start, iter(succ[start]))]
        state[start] = 1
        path = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                raise NIRError(f"the NIR graph has a cycle {' -> '.join(cycle)} (node "
                               f"{child!r}): recurrent graphs are not supported")
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(succ[child])))
                path.append(child)


def parse_graph(graph, *, dt: float = DT) -> list[FloatCuba]:
    """The layers of a chain NIR graph as :class:`FloatCuba` (module docstring), or a
    :class:`NIRError` naming the offending node."""
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a positive number, got {dt!r}")
    order = _chain(graph)
    first = graph.nodes[order[0]]
    size = _input_size(order[0], first)
    layers = []
    body = order[1:-1]
    i = 0
    while i < len(body):
        syn_name = body[i]
        syn = graph.nodes[syn_name]
        if type(syn).__name__ not in SYNAPSES:
            raise NIRError(f"NIR node {syn_name!r} ({type(syn).__name__}) must follow an "
                           f"Affine or Linear node: every layer is synapses then neurons")
        if i + 1 >= len(body) or type(graph.nodes[body[i + 1]]).__name__ not in NEURONS:
            nxt = body[i + 1] if i + 1 < len(body) else order[-1]
            raise NIRError(f"NIR node {syn_name!r} ({type(syn).__name__}) must be followed by "
                           f"a CubaLIF, LIF or IF node, not {nxt!r}")
        neuron_name = body[i + 1]
        layers.append(_layer(syn_name, syn, neuron_name, graph.nodes[neuron_name], size, dt))
        size = layers[-1].out_features
        i += 2
    if not layers:
        raise NIRError("the NIR graph has no layer (Affine/Linear followed by a neuron node)")
    out = graph.nodes[order[-1]]
    declared = _declared_size(out.output_type.get("output") if hasattr(out, "output_type")
                              else None)
    if declared is not None and declared != size:
        raise NIRError(f"NIR node {order[-1]!r} (Output): declares {declared} values but the "
                       f"last layer has {size} neurons")
    return layers


def _declared_size(shape: Any) -> int | None:
    if shape is None:
        return None
    arr = np.asarray(shape).reshape(-1)
    if arr.size == 0:
        return None
    return int(np.prod(arr))


def _input_size(name: str, node: Any) -> int:
    size = _declared_size(getattr(node, "input_type", {}).get("input"))
    if size is None or size < 1:
        raise NIRError(f"NIR node {name!r} (Input): needs a shape, e.g. [neurons]")
    return size


def _layer(syn_name: str, syn: Any, name: str, neuron: Any, size: int, dt: float) -> FloatCuba:
    weight = _array(syn_name, syn, "weight")
    if weight.ndim != 2:
        raise NIRError(f"NIR node {syn_name!r} ({type(syn).__name__}): weight must be 2-D "
                       f"(out, in), got shape {weight.shape}")
    out_n, in_n = weight.shape
    if in_n != size:
        raise NIRError(f"NIR node {syn_name!r}: weight {weight.shape} takes {in_n} inputs but "
                       f"the node before it gives {size}")
    bias = (_array(syn_name, syn, "bias", out_n) if type(syn).__name__ == "Affine"
            else np.zeros(out_n))
    kind = type(neuron).__name__
    threshold = _array(name, neuron, "v_threshold", out_n)
    if (threshold <= 0).any():
        raise NIRError(f"NIR node {name!r} ({kind}): v_threshold must be > 0 (Loihi's "
                       f"threshold is positive)")
    v_reset = _array(name, neuron, "v_reset", out_n) if getattr(neuron, "v_reset", None) \
        is not None else np.zeros(out_n)
    if np.any(v_reset != 0):
        raise NIRError(f"NIR node {name!r} ({kind}): v_reset must be 0 (Loihi resets to zero)")
    r = _array(name, neuron, "r", out_n)
    if kind == "CubaLIF":
        k_syn = dt / _positive(name, neuron, "tau_syn", out_n)
        k_mem = dt / _positive(name, neuron, "tau_mem", out_n)
        gain = _array(name, neuron, "w_in", out_n) * k_syn * r * k_mem
        alpha, beta = 1 - k_syn, 1 - k_mem
        v_bias = k_mem * _array(name, neuron, "v_leak", out_n)
        if np.any(bias != 0) and not np.allclose(alpha, 0):
            raise NIRError(f"NIR node {syn_name!r}: a bias into the decaying synaptic current "
                           f"of {name!r} (tau_syn > dt) has no Loihi equivalent (Loihi adds "
                           f"biases to the voltage); use Linear, or v_leak")
        v_bias = v_bias + gain * bias
    elif kind == "LIF":
        k_mem = dt / _positive(name, neuron, "tau", out_n)
        gain = r * k_mem
        alpha, beta = np.zeros(out_n), 1 - k_mem
        v_bias = k_mem * _array(name, neuron, "v_leak", out_n) + gain * bias
    else:  # IF
        gain = r
        alpha, beta = np.zeros(out_n), np.ones(out_n)
        v_bias = gain * bias
    for label, value in (("tau_syn", alpha), ("tau_mem", beta)):
        if not np.allclose(value, value[0], rtol=0, atol=1e-9):
            raise NIRError(f"NIR node {name!r} ({kind}): per-neuron {label} values "
                           f"({value.min():.6g}..{value.max():.6g} kept per step): one Loihi "
                           f"layer has one decay; split the layer or use one time constant")
    if (gain == 0).any():
        raise NIRError(f"NIR node {name!r} ({kind}): an input gain of zero (w_in or r is 0)")
    return FloatCuba(name=layer_name(name), weight=weight * gain[:, None], bias=v_bias,
                     threshold=threshold, alpha=float(alpha[0]), beta=float(beta[0]),
                     nodes=(syn_name, name))


def layer_name(node: str) -> str:
    """The layer name of a neuron node: ours lose their ``_lif`` suffix, numbers (snnTorch's
    node names) become ``layer<N>``."""
    name = node[:-4] if node.endswith("_lif") and len(node) > 4 else node
    return f"layer{name}" if name.isdigit() else name


def _positive(name: str, node: Any, attr: str, size: int) -> np.ndarray:
    value = _array(name, node, attr, size)
    if (value <= 0).any():
        raise NIRError(f"NIR node {name!r} ({type(node).__name__}): {attr} must be > 0")
    return value


def check_stable(layers: list[FloatCuba], dt: float) -> None:
    """Refuse time constants shorter than ``dt`` (Euler would overshoot: a negative decay)."""
    for layer in layers:
        for label, kept in (("tau_syn", layer.alpha), ("tau_mem", layer.beta)):
            if not 0.0 <= kept <= 1.0 + 1e-12:
                raise NIRError(f"NIR node {layer.name!r}: {label} is shorter than dt = {dt:g} "
                               f"(keeps {kept:.4g} per step); give a smaller --dt")


# --------------------------------------------------------------------------- float simulation

def simulate(layers: list[FloatCuba], spikes: np.ndarray) -> list[np.ndarray]:
    """Every layer's spikes ``(batch, n, T)`` uint8 of the float chain on ``spikes (batch, in,
    T)`` (float64, Euler, reset to 0, spike where ``v > threshold``)."""
    x = np.asarray(spikes, dtype=np.float64)
    outs = []
    for layer in layers:
        batch, _, steps = x.shape
        cur = np.zeros((batch, layer.out_features))
        v = np.zeros_like(cur)
        out = np.zeros((batch, layer.out_features, steps), dtype=np.uint8)
        drive = np.einsum("oi,bit->bot", layer.weight, x)
        for t in range(steps):
            cur = layer.alpha * cur + drive[:, :, t]
            v = layer.beta * v + cur + layer.bias
            s = v > layer.threshold
            v[s] = 0.0
            out[:, :, t] = s
        outs.append(out)
        x = out.astype(np.float64)
    return outs
