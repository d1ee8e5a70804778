"""What a shard output records about where it was computed: the model's package and the image.

- ``model_package``: the distribution whose ``scengrid.models`` entry point registers the
  model, with its version (``"acme-risk 1.2.0"``; ``"scengrid 0.1.0"`` for scengrid's own).
- ``image``: on AWS, the task metadata endpoint v4's ``Image`` and ``ImageID`` (the digest the
  task runs: ``<repository>:<tag>@sha256:…``); locally, what the container runner set in
  ``SCENGRID_IMAGE``; absent for a worker that is not a container."""

from __future__ import annotations

import json
import urllib.request
from functools import lru_cache

from scengrid.models import model_package
from scengrid.observability import service_logger
from scengrid.settings import ContainerEnv

METADATA_TIMEOUT_S = 2.0
logger = service_logger("worker")


@lru_cache(maxsize=1)
def container_image() -> str:
    """The image this container runs, read once per process ("" outside a container)."""
    env = ContainerEnv()
    if env.scengrid_image:
        return env.scengrid_image
    if not env.ecs_container_metadata_uri_v4:
        return ""
    try:
        with urllib.request.urlopen(env.ecs_container_metadata_uri_v4, timeout=METADATA_TIMEOUT_S) as answer:  # noqa: S310 (ECS's own URI)
            found = json.load(answer)
    except (OSError, ValueError) as exc:
        logger.warning("the task metadata endpoint did not answer: the image is not recorded", extra={"error": str(exc)})
        return ""
    return image_reference(str(found.get("Image", "")), str(found.get("ImageID", "")))


def image_reference(image: str, image_id: str) -> str:
    """``image@sha256:…`` when the digest is known and not already in the reference."""
    if image_id.startswith("sha256:") and "@" not in image:
        return f"{image}@{image_id}"
    return image or image_id


@lru_cache(maxsize=64)
def _package(model: str) -> str:
    return model_package(model)


def provenance(model: str) -> dict[str, str]:
    """The metadata keys a shard output gets: ``model_package`` and, in a container, ``image``."""
    found = {"model_package": _package(model)}
    image = container_image()
    if image:
        found["image"] = image
    return {k: v for k, v in found.items() if v}
