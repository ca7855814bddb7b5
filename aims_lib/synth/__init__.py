"""Synthetic infant images: poses, appearance, rendering and the dataset generator.

Modules are imported where used: rendering pulls in OpenGL, which must be configured first.
"""
