"""Commands of this group register on `nectar.cli.common.app` (see nectar/cli/__init__.py)."""
