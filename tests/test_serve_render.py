"""The server workers' renderers (serve/render.py): settings that differ only in what is
done with the cut-out share one Pipeline (its models), with the real models."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from backdrop.config import parse_background
from backdrop.offline.image import ImageSettings
from backdrop.serve.render import Renderers


def _settings(background: str, quality: str = "fast") -> ImageSettings:
    opaque = background != "transparent"
    return ImageSettings(quality=quality, background=parse_background(background),
                         kind="composite" if opaque else "cutout", fmt="png", subject="person")


def test_backgrounds_share_the_models_and_each_gets_its_own(astronaut):
    renderers = Renderers(keep=2, workers=8)
    try:
        colours = ["#00ff00", "#ff00ff", "transparent", "#00ff00", "#0000ff"]
        workers = [renderers.get(_settings(c)) for c in colours]
        shared = workers[0].pipeline
        assert all(w.pipeline is shared for w in workers)          # loaded once
        assert workers[3] is workers[0]                             # kept
        wall = (slice(20, 80), slice(300, 340))                     # grey wall by her head
        for colour, worker in zip(colours, workers):                # in turn, on one pipeline
            image = worker.render(astronaut).image
            if colour == "transparent":
                assert image.shape[2] == 4 and (image[wall][..., 3] == 0).mean() > 0.9
            else:
                want = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
                close = np.abs(image[wall].astype(int) - want).max(axis=-1) <= 2
                assert image.shape[2] == 3 and close.mean() > 0.9, colour
        # another quality loads other models; beyond `keep` the oldest go, with their workers
        best = renderers.get(_settings("#00ff00", "balanced"))
        assert best.pipeline is not shared
        renderers.get(replace(_settings("#00ff00"), subject="any"))
        assert renderers.get(_settings("#00ff00")).pipeline is not shared
    finally:
        renderers.close()
