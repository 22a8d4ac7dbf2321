"""Backend registry: lazy lookup, availability report, clear errors."""

from __future__ import annotations

import importlib.util

import pytest

from edgesam.runtimes import BACKENDS, BackendUnavailableError, available_backends, get_backend_class


def test_unknown_backend_lists_known_names() -> None:
    with pytest.raises(ValueError, match="known backends: 'torch', 'onnxruntime'"):
        get_backend_class("tflite")


def test_available_backends_reports_every_entry() -> None:
    report = available_backends()
    assert set(report) == set(BACKENDS)
    for name, status in report.items():
        assert status is True or (isinstance(status, str) and status)
    if importlib.util.find_spec("torch") is not None:
        assert report["torch"] is True


def test_get_backend_class_imports_lazily() -> None:
    for name, entry in BACKENDS.items():
        if importlib.util.find_spec(entry.module) is None:
            with pytest.raises(BackendUnavailableError):
                get_backend_class(name)
        else:
            cls = get_backend_class(name)
            assert cls.__name__ == entry.class_name and cls.name == name
