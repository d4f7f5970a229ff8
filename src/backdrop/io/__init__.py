"""Frames in and out: cameras, image and video files, the virtual camera, the preview window.

Colour conversion and device sizes happen here and nowhere else. Imports platform only.
"""
