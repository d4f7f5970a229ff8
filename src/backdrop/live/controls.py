"""Live settings changed without a restart: preview hotkeys and edits of the config file.

The runner calls these between frames; nothing here waits, watches or touches pixels.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence

from backdrop.config import Config, PipelineConfig, parse_background

logger = logging.getLogger(__name__)
KEYS = "q/esc quit, b next background, space effect on/off, m mirror, p privacy"


class Controls:
    """Hotkeys and config edits -> pipeline settings and the privacy state.

    Keys: q/esc quit, b next background, space effect on/off, m mirror, p privacy on/off
    (switching to `privacy_key`: freeze or blank). `rebuild(PipelineConfig)` makes a new,
    warmed-up pipeline when an edit changes the quality or model.
    """

    def __init__(self, pipeline, backgrounds: Sequence[str], *,
                 privacy: str = "off", privacy_key: str = "blank",
                 rebuild: Optional[Callable[[PipelineConfig], object]] = None):
        self.pipeline = pipeline
        self.rebuild = rebuild
        self.privacy, self.privacy_key = privacy, privacy_key
        self._set_cycle(backgrounds)
        self.saved = None          # background hidden by the space toggle

    def _set_cycle(self, backgrounds: Sequence[str]) -> None:
        current = str(self.pipeline.spec)
        names = [current] + [b for b in backgrounds if str(parse_background(b)) != current]
        self.cycle = [parse_background(b) for b in names]
        self.index = 0

    # -- hotkeys ---------------------------------------------------------------------------
    def handle(self, key: Optional[str]) -> bool:
        """Apply a key; returns False when the user asked to quit."""
        if key in ("q", "esc"):
            return False
        if key == "b":
            self.index = (self.index + 1) % len(self.cycle)
            self.saved = None
            self.pipeline.set_background(self.cycle[self.index])
            logger.info(f"background: {self.cycle[self.index]}")
        elif key == "space":
            self._toggle_effect()
        elif key == "m":
            self.pipeline.mirror = not self.pipeline.mirror
            logger.info(f"mirror {'on' if self.pipeline.mirror else 'off'}")
        elif key == "p":
            self.set_privacy("off" if self.privacy != "off" else self.privacy_key)
        return True

    def _toggle_effect(self) -> None:
        if self.saved is None:
            self.saved = self.pipeline.spec
            self.pipeline.set_background("none")
            logger.info("effect off (space to turn it back on)")
        else:
            self.pipeline.set_background(self.saved)
            self.saved = None
            logger.info(f"effect on: {self.pipeline.spec}")

    def set_privacy(self, mode: str) -> None:
        if mode == self.privacy:
            return
        self.privacy = mode
        if mode == "off":
            logger.info("privacy off: camera on")
        else:
            what = "frozen picture" if mode == "freeze" else "blank picture"
            logger.info(f"privacy on: others see a {what}, camera released (p to turn off)")

    # -- config edits ----------------------------------------------------------------------
    def apply(self, old: Config, new: Config) -> List[str]:
        """Apply what changed from `old` to `new`; returns what it changed, for the log.

        Anything that can fail (a new background file, a new pipeline) is done first, so a
        failure (raised as a BackdropError) leaves every setting as it was.
        """
        done: List[str] = []
        p_old, p_new = old.pipeline, new.pipeline
        if (p_new.quality, p_new.model) != (p_old.quality, p_old.model):
            if self.rebuild is None:
                logger.warning("config: quality/model changes need a restart here; not applied")
            else:
                fresh = self.rebuild(p_new)
                old_pipeline, self.pipeline = self.pipeline, fresh
                old_pipeline.close()
                self.saved = None
                done.append(f"quality {p_new.quality}, model {p_new.model}")
        elif p_new.background != p_old.background:
            self.pipeline.set_background(p_new.background)
            self.saved = None
            done.append(f"background {p_new.background}")
        if p_new.mirror != p_old.mirror:
            self.pipeline.mirror = p_new.mirror
            done.append(f"mirror {'on' if p_new.mirror else 'off'}")
        if new.output.backgrounds != old.output.backgrounds or done:
            self._set_cycle(new.output.backgrounds)
        if new.output.privacy_key != old.output.privacy_key:
            self.privacy_key = new.output.privacy_key
            done.append(f"privacy key -> {self.privacy_key}")
        if new.output.privacy != old.output.privacy:
            self.set_privacy(new.output.privacy)
            done.append(f"privacy {new.output.privacy}")
        restart = restart_needed(old, new)
        if restart:
            logger.warning(f"config: {', '.join(restart)} changed; these need a restart of"
                           f" `backdrop live` and were not applied")
        return done


def restart_needed(old: Config, new: Config) -> List[str]:
    """Settings that only take effect when devices are opened again."""
    names = [f"[source] {k}" for k in vars(new.source) if
             getattr(new.source, k) != getattr(old.source, k)]
    for key in ("sinks", "vcam_device"):
        if getattr(new.output, key) != getattr(old.output, key):
            names.append(f"[output] {key}")
    return names
