"""Image and video jobs, and the pixel layouts of offline outputs (cut-outs, check sheets).

Library side only: nothing here prints. Imports engine and io.
"""
