"""Torch -> ONNX bundle export (TorchScript-based ``torch.onnx.export``, opset 17 by default).

The classic TorchScript exporter (``dynamo=False``) is used: on the torch versions we
support it gives the same graph for every model, honours ``dynamic_axes`` for the decoder's
prompt batch ``B`` and point count ``N``, and needs no extra packages. Every export is
verified in ONNX Runtime before the bundle appears (see :mod:`edgesam.export.verify`); the
bundle is written into a temporary sibling folder and renamed into place, so ``out_dir``
either holds a complete verified bundle or is left as it was.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgesam._version import __version__
from edgesam.bundle.catalogue import resolve
from edgesam.bundle.format import GOLDEN_FILE, check_replaceable, publish_folder, write_metadata
from edgesam.bundle.golden import save_golden
from edgesam.bundle.io_spec import (
    DECODER_GRAPH,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    SAM_DECODER_INPUTS,
    SAM_DECODER_OUTPUTS,
)
from edgesam.export.verify import Tolerance, VerificationInputs, make_verification_inputs, verify_export
from edgesam.export.wrappers import DecoderOnnx, EncoderOnnx, SamOfficialDecoderOnnx
from edgesam.models.sam import Sam

__all__ = ["DEFAULT_OPSET", "deployment_model", "export_bundle", "export_onnx"]

DEFAULT_OPSET = 17
_PROTOBUF_LIMIT = 2_000_000_000  # bytes; larger models keep their weights in external data
_DECODER_AXES = {
    "point_coords": {0: "num_prompts", 1: "num_points"},
    "point_labels": {0: "num_prompts", 1: "num_points"},
    "mask_input": {0: "num_prompts"},
    "has_mask_input": {0: "num_prompts"},
    "iou_predictions": {0: "num_prompts"},
    "low_res_masks": {0: "num_prompts"},
}
_SAM_DECODER_AXES = {
    **_DECODER_AXES,
    "masks": {0: "num_prompts", 2: "height", 3: "width"},
}


def deployment_model(model: Sam) -> Sam:
    """An eval-mode copy of ``model`` prepared for export (``model`` is left untouched).

    RepViT encoders (``edge_sam``) are re-parameterised with
    :func:`edgesam.models.encoders.rep_vit.fuse_rep_vit` (conv+BN and the multi-branch
    depthwise mixers folded into single convolutions).
    """
    out = copy.deepcopy(model).eval()
    encoder = out.image_encoder
    if type(encoder).__name__ == "RepViT":
        from edgesam.models.encoders.rep_vit import fuse_rep_vit

        out.image_encoder = fuse_rep_vit(encoder)
    return out.eval()


def _example_decoder_inputs(model: Sam, *, batch: int = 2, points: int = 3) -> tuple[torch.Tensor, ...]:
    h, w = model.embedding_size
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(1, model.prompt_encoder.embed_dim, h, w, generator=gen),
        torch.rand(batch, points, 2, generator=gen) * model.image_size,
        torch.randint(-1, 4, (batch, points), generator=gen).float(),
        torch.randn(batch, 1, 4 * h, 4 * w, generator=gen),
        torch.tensor([float(i % 2) for i in range(batch)]),
    )


def export_onnx(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: str | os.PathLike[str],
    *,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = DEFAULT_OPSET,
    external_data: bool | None = None,
) -> Path:
    """Export ``module(*args)`` to ``path`` with the TorchScript exporter.

    ``external_data``: None stores the weights in the ``.onnx`` file unless the model exceeds
    protobuf's 2 GB limit; True always moves them to ``<path>.data`` beside it.
    """
    import onnx

    out = Path(path)
    was_training = module.training
    module.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="edgesam-onnx-") as scratch, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; verification decides
            raw = Path(scratch) / out.name
            torch.onnx.export(
                module,
                args,
                str(raw),
                dynamo=False,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes or {},
                do_constant_folding=True,
            )
            proto = onnx.load(str(raw), load_external_data=True)
            big = proto.ByteSize() > _PROTOBUF_LIMIT if external_data is None else external_data
            if big:
                onnx.save_model(proto, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                                location=out.name + ".data", size_threshold=1024)  # fmt: skip
            else:
                onnx.save_model(proto, str(out))
    finally:
        module.train(was_training)
    return out


def _load(model_or_checkpoint: Sam | str | os.PathLike[str], arch: str | None, image_size: int | None) -> Sam:
    if isinstance(model_or_checkpoint, nn.Module):
        if image_size is not None and image_size != model_or_checkpoint.image_size:
            raise ValueError(f"image_size={image_size} differs from the model's {model_or_checkpoint.image_size}")
        return model_or_checkpoint
    from edgesam.models.checkpoints import load_model

    return load_model(model_or_checkpoint, arch, image_size=image_size, resolve=resolve)


def _save_golden(path: Path, data: VerificationInputs, model: Sam) -> None:
    """Inputs and torch outputs of the first verification case, for runtime self-checks."""
    case = data.cases[0]
    with torch.inference_mode():
        embed = model.encode(torch.from_numpy(data.model_input))
        iou, masks = model.decode(embed, *(torch.from_numpy(case[k]) for k in DECODER_INPUTS[1:]))
    save_golden(path, {
        "image": data.image, "model_input": data.model_input, "image_embeddings": embed.numpy(),
        "iou_predictions": iou.numpy(), "low_res_masks": masks.numpy(), **case,
    })  # fmt: skip


def export_bundle(
    model_or_checkpoint: Sam | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    arch: str | None = None,
    image_size: int | None = None,
    opset: int = DEFAULT_OPSET,
    sam_decoder: bool = False,
    sam_single_mask: bool = True,
    tolerance: Tolerance | None = None,
    external_data: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a SAM-family model to a verified bundle folder.

    Args:
        model_or_checkpoint: a torch :class:`~edgesam.models.sam.Sam`, or a checkpoint file /
            zoo name loaded with :func:`edgesam.load_model`.
        out_dir: bundle folder to create (see :mod:`edgesam.bundle.format` for the layout).
        arch, image_size: passed to ``load_model`` for checkpoints.
        opset: ONNX opset (>= 17: the decoder uses LayerNormalization).
        sam_decoder: also write ``decoder_sam.onnx`` with segment_anything's interface.
        sam_single_mask: that decoder returns one mask (True, as SAM's web demo expects) or
            all four.
        tolerance: verification bounds (default :class:`Tolerance`); stored in the metadata.
        external_data: see :func:`export_onnx`.
        overwrite: replace an existing bundle folder (or empty folder) at ``out_dir``; an existing
            ``out_dir`` is otherwise an error.

    Returns:
        The bundle folder path.

    Raises:
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``out_dir`` is neither a bundle folder nor an empty folder
            (nothing else is ever deleted).
        ExportVerificationError: ONNX Runtime does not reproduce torch within ``tolerance``.
    """
    out = Path(out_dir).absolute()
    check_replaceable(out, overwrite=overwrite)
    if opset < 17:
        raise ValueError(f"opset must be >= 17 (LayerNormalization), got {opset}")
    source = _load(model_or_checkpoint, arch, image_size)
    model = deployment_model(source)
    tol = tolerance or Tolerance()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        example_image = torch.zeros(1, 3, model.image_size, model.image_size)
        export_onnx(EncoderOnnx(model), (example_image,), tmp / "encoder.onnx", input_names=ENCODER_INPUTS,
                    output_names=ENCODER_OUTPUTS, opset=opset, external_data=external_data)  # fmt: skip
        dec_args = _example_decoder_inputs(model)
        export_onnx(DecoderOnnx(model), dec_args, tmp / "decoder.onnx", input_names=DECODER_INPUTS,
                    output_names=DECODER_OUTPUTS, dynamic_axes=_DECODER_AXES, opset=opset,
                    external_data=external_data)  # fmt: skip
        models = {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "golden": GOLDEN_FILE}
        if sam_decoder:
            orig = torch.tensor([model.image_size * 0.75, model.image_size], dtype=torch.float32)
            export_onnx(SamOfficialDecoderOnnx(model, return_single_mask=sam_single_mask), (*dec_args, orig),
                        tmp / "decoder_sam.onnx", input_names=SAM_DECODER_INPUTS, output_names=SAM_DECODER_OUTPUTS,
                        dynamic_axes=_SAM_DECODER_AXES, opset=opset, external_data=external_data)  # fmt: skip
            models["decoder_sam"] = "decoder_sam.onnx"
        mean, std = model.pixel_mean.flatten().numpy(), model.pixel_std.flatten().numpy()
        data = make_verification_inputs(model.image_size, mean, std)
        report = verify_export(
            model, tmp / "encoder.onnx", tmp / "decoder.onnx", sam_decoder_path=tmp / models["decoder_sam"]
            if sam_decoder else None, sam_single_mask=sam_single_mask, inputs=data, tolerance=tol,
        )  # fmt: skip
        _save_golden(tmp / GOLDEN_FILE, data, model)
        write_metadata(tmp, {
            "arch": str(model.arch), "image_size": int(model.image_size),
            "embedding_dim": int(model.prompt_encoder.embed_dim),
            "pixel_mean": [float(v) for v in mean], "pixel_std": [float(v) for v in std],
            "mask_threshold": float(model.mask_threshold), "opset": int(opset), "precision": "fp32",
            "quantization": None, "edgesam_version": __version__, "torch_version": torch.__version__,
            "models": models, "decoder_graph": DECODER_GRAPH, "decoder_sam_single_mask": bool(sam_single_mask) if sam_decoder else None,
            "verification": report,
        })  # fmt: skip
        publish_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
