"""The bottom layer: the bundle format and the model-name catalogue (imports nothing else of edgesam).

* :mod:`~edgesam.bundle.format`: bundle folders (``Bundle``, :func:`load_bundle`,
  :func:`write_metadata`, :func:`sha256_file`, :data:`METADATA_FILE`, external-data checks).
* :mod:`~edgesam.bundle.io_spec`: input/output names of the bundle graphs.
* :mod:`~edgesam.bundle.golden`: the golden reference file.
* :mod:`~edgesam.bundle.onnx_refs`: external-data references of an ONNX file (standard library).
* :mod:`~edgesam.bundle.catalogue`: checkpoint names, the download cache (``$EDGESAM_HOME``)
  and the embedded models.

numpy and the standard library only: every other package of edgesam may import this one.
"""

from edgesam.bundle.catalogue import ZOO, ZooEntry, cache_dir, embedded_models, list_models, resolve
from edgesam.bundle.format import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    GOLDEN_FILE,
    METADATA_FILE,
    PRECISIONS,
    Bundle,
    BundleError,
    BundleIntegrityError,
    load_bundle,
    check_replaceable,
    publish_folder,
    sha256_file,
    write_metadata,
)
from edgesam.bundle.golden import load_golden, save_golden

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "GOLDEN_FILE",
    "METADATA_FILE",
    "PRECISIONS",
    "ZOO",
    "Bundle",
    "BundleError",
    "BundleIntegrityError",
    "ZooEntry",
    "cache_dir",
    "embedded_models",
    "list_models",
    "load_bundle",
    "load_golden",
    "check_replaceable",
    "publish_folder",
    "resolve",
    "save_golden",
    "sha256_file",
    "write_metadata",
]
