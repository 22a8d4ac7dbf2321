"""Property-based robustness of the public predictor API on real models.

Any image or prompt either works -- outputs of the documented shapes and dtypes, bool masks,
finite scores and logits -- or raises ``ValueError``/``TypeError`` with a message. Inputs the
documentation accepts must work. Checked on a trained torch model (``edgesam-demo``, 128 px)
and an ONNX Runtime bundle (a seeded two-layer model, 128 px).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgesam.predictor import SamPredictor

pytest.importorskip("torch")

_PREDICTORS: dict[str, SamPredictor] = {}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _predictor(kind: str, factory: pytest.TempPathFactory) -> SamPredictor:
    if kind not in _PREDICTORS:
        if kind == "torch":
            import edgesam

            _PREDICTORS[kind] = SamPredictor(edgesam.load_model("edgesam-demo"))
        else:
            pytest.importorskip("onnxruntime")
            from bundle_fixtures import tiny_model

            from edgesam.export import export_bundle

            bundle = export_bundle(tiny_model(), factory.mktemp("robust") / "tiny")
            _PREDICTORS[kind] = SamPredictor.from_bundle(bundle, intra_op_threads=1)
    return _PREDICTORS[kind]


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def predictor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SamPredictor:
    return _predictor(request.param, tmp_path_factory)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])  # fmt: skip
CLEAR_ERRORS = (ValueError, TypeError)

# --------------------------------------------------------------------------- images

IMAGE_DTYPES = ["uint8", "uint16", "int8", "int32", "int64", "float16", "float32", "float64", "bool", "complex64"]


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    plausible = draw(st.booleans())  # half the time: a layout and value range the docs accept
    dtype = np.dtype(draw(st.sampled_from(IMAGE_DTYPES[:8] if plausible else IMAGE_DTYPES)))
    h, w = draw(st.integers(1 if plausible else 0, 40)), draw(st.integers(1 if plausible else 0, 40))
    if draw(st.integers(0, 5)) == 0:  # long thin images
        h, w = (1, draw(st.integers(40, 600))) if draw(st.booleans()) else (draw(st.integers(40, 600)), 1)
    layouts = ["hw", "hwc", "hwc", "hwc"] + ([] if plausible else ["chw", "1d", "4d"])
    layout = draw(st.sampled_from(layouts))
    c = draw(st.sampled_from([1, 3, 3, 4] if plausible else [0, 1, 2, 3, 4, 5]))
    shape = {"hw": (h, w), "hwc": (h, w, c), "chw": (3, h, w), "1d": (h,), "4d": (1, h, w, 3)}[layout]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if plausible:
        values = "unit" if dtype.kind == "f" else "byte"
    else:
        values = draw(st.sampled_from(["unit", "byte", "wide", "negative", "nan", "inf"]))
    scale = {"unit": 1.0, "byte": 255.0, "wide": 65535.0, "negative": 255.0, "nan": 1.0, "inf": 1.0}[values]
    data = rng.random(shape) * scale
    if values == "negative":
        data -= 128.0
    if dtype.kind in "iu":
        data = np.rint(data)
        info = np.iinfo(dtype)
        data = np.clip(data, info.min, info.max)
    with np.errstate(over="ignore", invalid="ignore"):  # 65535 overflows float16 to inf: a valid test input
        image = data.astype(dtype) if dtype.kind != "b" else data > 0.5
    if values in ("nan", "inf") and image.size and dtype.kind in "fc":
        image.flat[int(rng.integers(image.size))] = np.nan if values == "nan" else np.inf
    return image


def documented_image(image: np.ndarray) -> bool:
    """Whether ``set_image`` documents this image as accepted."""
    if image.dtype.kind not in "iuf" or image.ndim not in (2, 3) or image.size == 0:
        return False
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        return False
    if image.dtype.kind == "f":
        data = image.astype(np.float64)
        return bool(np.isfinite(data).all() and data.min() >= 0.0 and data.max() <= 1.0)
    return bool(image.min() >= 0 and image.max() <= 255)


def check_outputs(pred: SamPredictor, out: tuple[np.ndarray, ...], n_masks: int, logits: bool) -> None:
    masks, scores, low_res = out
    h, w = pred.original_size
    m = 4 * pred.get_image_embedding().shape[-1]
    assert masks.shape == (n_masks, h, w) and masks.dtype == (np.float32 if logits else np.bool_)
    assert scores.shape == (n_masks,) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert low_res.shape == (n_masks, m, m) and low_res.dtype == np.float32 and np.isfinite(low_res).all()
    if logits:
        assert np.isfinite(masks).all()


@SETTINGS
@given(image=images())
def test_any_image_works_or_is_refused_clearly(predictor: SamPredictor, image: np.ndarray) -> None:
    try:
        predictor.set_image(image)
    except CLEAR_ERRORS as exc:
        event(f"refused: {type(exc).__name__}")
        assert str(exc)
        long_side, short_side = max(image.shape[:2]), min(image.shape[:2])
        thin = image.ndim in (2, 3) and short_side * predictor.backend.image_size / max(long_side, 1) < 0.5
        assert not documented_image(image) or thin, f"documented input refused: {exc}"
        return
    event("accepted")
    assert documented_image(image)
    assert predictor.original_size == image.shape[:2]
    h, w = image.shape[:2]
    out = predictor.predict(point_coords=np.array([[w / 2, h / 2]]), point_labels=np.array([1]))
    check_outputs(predictor, out, 3, False)


# --------------------------------------------------------------------------- prompts

SIZE = (48, 64)  # (H, W) of the prompted image
NUMBERS = st.one_of(
    st.floats(-1e30, 1e30, allow_nan=False),
    st.floats(-100, 200),
    st.sampled_from([0.0, -1.0, 63.0, 64.0, 1e6, float("nan"), float("inf"), -float("inf")]),
)


def _array(draw: st.DrawFn, shape: tuple[int, ...], kind: str, elements: st.SearchStrategy[Any]) -> Any:
    values = [draw(elements) for _ in range(int(np.prod(shape)))]
    if kind == "list":
        return np.asarray(values, dtype=np.float64).reshape(shape).tolist()
    if kind == "str":
        return np.asarray([str(v) for v in values], dtype=object).reshape(shape).astype(str)
    arr = np.asarray(values, dtype=np.float64).reshape(shape)
    if np.dtype(kind).kind in "iu":  # integers cannot hold NaN/inf/1e30
        arr = np.clip(np.nan_to_num(arr, posinf=0.0, neginf=0.0), -(2.0**62), 2.0**62)
    return arr.astype(kind)


@st.composite
def prompts(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"multimask_output": draw(st.booleans()), "return_logits": draw(st.booleans())}
    plausible = draw(st.booleans())  # half the time: shapes, dtypes and labels the docs accept
    kinds = st.sampled_from(["float64", "float32", "int64", "list"] + ([] if plausible else ["bool", "str"]))
    numbers = st.floats(-20, 80) if plausible else NUMBERS
    if draw(st.booleans()):
        n = draw(st.integers(0, 4))
        shape = (n, 2) if plausible else draw(st.sampled_from([(n, 2), (n, 2), (n, 3), (2,), (1, n, 2)]))
        out["point_coords"] = _array(draw, shape, draw(kinds), numbers)
        if plausible or draw(st.integers(0, 5)):
            m = n if plausible else draw(st.sampled_from([n, n, n, n + 1]))
            labels = st.sampled_from([0, 1] if plausible else [0, 1, 1, 1, -1, 2, 3, 0.5])
            label_kinds = ["int64", "float32", "bool", "list"] + ([] if plausible else ["str"])
            out["point_labels"] = _array(draw, (m,), draw(st.sampled_from(label_kinds)), labels)
    elif not plausible and draw(st.integers(0, 4)) == 0:
        out["point_labels"] = np.array([1])
    if draw(st.booleans()):
        shape = (4,) if plausible else draw(st.sampled_from([(4,), (4,), (1, 4), (2, 2), (5,)]))
        box = _array(draw, shape, draw(kinds), numbers)
        if plausible:  # ordered corners
            b = np.asarray(box, dtype=np.float64)
            box = np.concatenate([np.minimum(b[:2], b[2:]), np.maximum(b[:2], b[2:])])
        out["box"] = box
    if draw(st.integers(0, 2)) == 0:
        m = 32
        shapes = [(1, m, m), (m, m)] + ([] if plausible else [(1, 1, m, m), (1, 2 * m, 2 * m), (3, m, m)])
        shape = draw(st.sampled_from(shapes))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        fill = draw(st.sampled_from(["normal", "huge", "bool"] + ([] if plausible else ["nan"])))
        mask = rng.normal(0, 5, shape).astype(np.float32)
        if fill == "huge":
            mask *= np.float32(1e36)
        elif fill == "nan":
            mask.flat[0] = np.nan
        elif fill == "bool":
            mask = mask > 0
        out["mask_input"] = mask
    return out


def documented_prompt(p: dict[str, Any]) -> bool:
    """Whether ``predict`` documents this prompt as valid (see edgesam.predictor.prompts)."""

    def numeric(x: Any, allow_bool: bool = False) -> np.ndarray | None:
        arr = np.asarray(x)
        return arr if arr.dtype.kind in ("iuf" + ("b" if allow_bool else "")) else None

    coords, labels = p.get("point_coords"), p.get("point_labels")
    if (coords is None) != (labels is None):
        return False
    if coords is not None:
        c, lab = numeric(coords), numeric(labels, allow_bool=True)
        if c is None or lab is None or c.ndim != 2 or c.shape[-1] != 2 or lab.shape != c.shape[:1]:
            return False
        if not np.isfinite(c.astype(np.float64)).all() or not np.isin(lab.astype(np.float32), (0, 1)).all():
            return False
        xy = c.astype(np.float64).reshape(-1, 2)
        if ((xy < 0) | (xy > [SIZE[1], SIZE[0]])).any():  # clicks outside the image are refused
            return False
    if p.get("box") is not None:
        b = numeric(p["box"])
        if b is None or b.shape not in ((4,), (1, 4)):
            return False
        b = b.astype(np.float64).reshape(4)
        if not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
            return False
        if b[0] > SIZE[1] or b[1] > SIZE[0] or b[2] < 0 or b[3] < 0:  # entirely outside: refused
            return False  # (partly outside: clipped with a warning)
    if p.get("mask_input") is not None:
        mi = numeric(p["mask_input"], allow_bool=True)
        if mi is None or mi.shape not in ((1, 32, 32), (32, 32)) or not np.isfinite(mi.astype(np.float64)).all():
            return False
    return True


@pytest.fixture(scope="module")
def prompted(predictor: SamPredictor) -> SamPredictor:
    rng = np.random.default_rng(0)
    predictor.set_image(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    return predictor


@SETTINGS
@given(prompt=prompts())
def test_any_prompt_works_or_is_refused_clearly(prompted: SamPredictor, prompt: dict[str, Any]) -> None:
    if prompted.original_size != SIZE:  # another test of this module set a different image
        prompted.set_image(np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    try:
        out = prompted.predict(**prompt)
    except CLEAR_ERRORS as exc:
        event(f"refused: {type(exc).__name__}")
        assert str(exc)
        assert not documented_prompt(prompt), f"documented prompt refused: {exc}"
        return
    event("accepted")
    assert documented_prompt(prompt)
    check_outputs(prompted, out, 3 if prompt["multimask_output"] else 1, prompt["return_logits"])


@SETTINGS
@given(b=st.integers(0, 3), n=st.integers(1, 3), with_boxes=st.booleans(), seed=st.integers(0, 2**32 - 1),
       mismatch=st.sampled_from([None, "boxes", "labels"]))  # fmt: skip
def test_batched_prompts(prompted: SamPredictor, b: int, n: int, with_boxes: bool, seed: int, mismatch: str | None) -> None:
    if prompted.original_size != SIZE:
        prompted.set_image(np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    rng = np.random.default_rng(seed)
    coords = rng.uniform(-10, 80, (b, n, 2))
    labels = rng.integers(0, 2, (b + (mismatch == "labels"), n))
    x0y0 = rng.uniform(0, 40, (b + (mismatch == "boxes"), 2))
    boxes = np.concatenate([x0y0, x0y0 + rng.uniform(0, 30, x0y0.shape)], axis=1) if with_boxes else None
    outside = ((coords < 0) | (coords > [SIZE[1], SIZE[0]])).any()  # refused: a click outside the image
    bad = mismatch == "labels" or (mismatch == "boxes" and with_boxes) or outside
    try:
        masks, scores, low_res = prompted.predict_batch(coords, labels, boxes)
    except CLEAR_ERRORS as exc:
        assert bad and str(exc)
        return
    assert not bad
    assert masks.shape == (b, 3, *SIZE) and masks.dtype == np.bool_
    assert scores.shape == (b, 3) and np.isfinite(scores).all() and np.isfinite(low_res).all()


# --------------------------------------------------------------------------- known gaps


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("prompt", [
    {"point_coords": np.array([[3e38, 3e38]]), "point_labels": np.array([1])},
    {"box": np.array([0.0, 0.0, 1e300, 1e300])},
    {"mask_input": np.full((1, 32, 32), 1e300)},
], ids=["point-3e38", "box-1e300", "mask-1e300-float64"])  # fmt: skip
def test_overflowing_prompts_are_refused(prompted: SamPredictor, prompt: dict[str, Any]) -> None:
    if prompted.original_size != SIZE:
        prompted.set_image(np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    try:
        _, scores, low_res = prompted.predict(**prompt)
    except CLEAR_ERRORS:
        return
    assert np.isfinite(scores).all() and np.isfinite(low_res).all()
