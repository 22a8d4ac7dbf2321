"""Input/output names of the bundle graphs (shared by the exporter and the runtimes; no torch).

``S`` is the model input side, ``h = w = S / 16``, ``B`` the prompt batch, ``N`` the points
per prompt (both dynamic in the decoders).

==================  =============================  =====================================
graph               inputs                         outputs
==================  =============================  =====================================
encoder.onnx        image [1,3,S,S]                image_embeddings [1,256,h,w]
decoder.onnx        image_embeddings [1,256,h,w],  iou_predictions [B,4],
                    point_coords [B,N,2],          low_res_masks [B,4,4h,4w]
                    point_labels [B,N],
                    mask_input [B,1,4h,4w],
                    has_mask_input [B]
decoder_sam.onnx    the decoder inputs +           masks [B,M,H,W], iou_predictions [B,M],
                    orig_im_size [2] (float32)     low_res_masks [B,M,4h,4w]  (M = 1 or 4)
==================  =============================  =====================================

All tensors are float32.
"""

from __future__ import annotations

__all__ = [
    "DECODER_GRAPH",
    "DECODER_INPUTS",
    "DECODER_OUTPUTS",
    "ENCODER_INPUTS",
    "ENCODER_OUTPUTS",
    "SAM_DECODER_INPUTS",
    "SAM_DECODER_OUTPUTS",
]

ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("image_embeddings",)
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("iou_predictions", "low_res_masks")
SAM_DECODER_INPUTS = (*DECODER_INPUTS, "orig_im_size")
SAM_DECODER_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")
# Recorded as ``decoder_graph`` in the bundle metadata: which formulation the decoder graphs
# trace (``edgesam.models.factored_decoder``). Caches re-export bundles written before it.
DECODER_GRAPH = "factored-2"
