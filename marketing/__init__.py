"""Omni-channel publishing and engagement reporting for the GLO creative-community programme."""

__version__ = "0.1.0"
