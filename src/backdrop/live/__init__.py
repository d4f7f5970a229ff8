"""The live loop: capture thread, pacing, reconnecting, idle, signals, hotkeys, placeholders.

Everything about time lives here; pixels are the engine's. Imports engine, io, platform.
"""
