"""Pipeline.process(frame): models, tracking, refinement, backgrounds, numba kernels.

No threads, no sleeping, no devices. Imports io only to load background files.
"""
