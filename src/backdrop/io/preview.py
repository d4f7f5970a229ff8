"""The preview window (OpenCV's GUI, touched only when used); also where hotkeys come from."""

from __future__ import annotations

import os
import socket
from typing import Optional

import cv2
import numpy as np

from backdrop.errors import SinkError
from backdrop.io.frames import Closing, check_frame
from backdrop.platform import current

KEY_NAMES = {27: "esc", 32: "space", 13: "enter", 10: "enter", 9: "tab", 8: "backspace",
             127: "backspace"}


def display_available() -> bool:
    """True when a preview window can be shown.

    On Linux that means an X server we can reach: OpenCV's wheel ships only Qt's xcb plugin,
    so a Wayland session without XWayland (or a stale DISPLAY) cannot show a window, and Qt
    aborts the process instead of raising when it tries. Windows and macOS windows need no
    server to connect to.
    """
    if not current().x_display:
        return True
    display = os.environ.get("DISPLAY", "")
    return bool(display) and x_display_reachable(display)


def x_display_reachable(display: str) -> bool:
    """Can the X server named by DISPLAY be connected to?

    OpenCV's Qt backend aborts the whole process when it cannot, so ask first.
    """
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]
    else:
        targets = [(socket.AF_INET, (host, 6000 + int(number)))]
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(address)
                return True
        except OSError:
            continue
    return False


# Resizable, keeps the aspect ratio, and without Qt's toolbar and status bar (GUI_NORMAL).
_WINDOW_FLAGS = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL


class PreviewSink(Closing):
    """An OpenCV window showing the output; also where hotkeys come from."""

    def __init__(self, *, title: str = "backdrop") -> None:
        if not display_available():
            display = os.environ.get("DISPLAY", "")
            why = (f"cannot connect to X display {display}" if display else
                   "DISPLAY is not set (XWayland is needed on Wayland)")
            raise SinkError(f"no display for the preview window: {why}; use --sink vcam or"
                            f" a file, or run under a desktop session")
        self.title = title
        self.name = f"preview window '{title}'"
        self._shown = False
        self._closed = False
        self._key: Optional[str] = None

    def send(self, frame: np.ndarray) -> None:
        if self._closed or self.closed:
            return  # imshow would bring back the window the user just closed
        check_frame(frame)
        try:
            if not self._shown:
                cv2.namedWindow(self.title, _WINDOW_FLAGS)
                cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
            cv2.imshow(self.title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        except cv2.error as e:
            raise SinkError("the preview window cannot be shown: OpenCV has no GUI here;"
                            " use --sink vcam or a file") from e
        self._shown = True
        # The window only paints while events are pumped; keep a key pressed meanwhile.
        key = self._wait_key()
        self._key = key or self._key

    def _wait_key(self) -> Optional[str]:
        code = cv2.waitKey(1)
        if code is None or code < 0:
            return None
        if code in KEY_NAMES:
            return KEY_NAMES[code]
        return chr(code).lower() if 33 <= code <= 126 else None

    def poll_key(self) -> Optional[str]:
        """The key pressed since the last call ('q', 'b', 'esc', 'space', ...) or None."""
        if not self._shown or self._closed:
            return None
        key, self._key = self._key, None
        return key or self._wait_key()

    @property
    def closed(self) -> bool:
        """True once the user closed the window (or close() was called)."""
        if self._closed:
            return True
        if not self._shown:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._shown:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # lets the GUI process the destroy before we go
            except cv2.error:
                pass

