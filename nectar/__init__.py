"""Nectar: write, prove and ship tail-sampling policies for Honeycomb Refinery."""

__version__ = "0.1.0"
