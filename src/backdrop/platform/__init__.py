"""What differs per operating system: V4L2 devices, /proc, inotify and v4l2loopback on Linux.

Only io and the live loop use this package; it imports nothing else from backdrop but errors.
"""
