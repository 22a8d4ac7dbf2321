"""``edgesam serve``: an HTTP API and a click-to-segment web page over one shared backend.

:func:`create_app` builds the FastAPI application (needs the ``serve`` extra: FastAPI,
uvicorn, prometheus-client, python-multipart); :class:`ServeConfig` holds its limits.
"""

from edgesam.serve.app import create_app
from edgesam.serve.cache import CachedImage, EmbeddingCache
from edgesam.serve.config import ServeConfig

__all__ = ["CachedImage", "EmbeddingCache", "ServeConfig", "create_app"]
