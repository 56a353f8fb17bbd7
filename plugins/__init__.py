"""The specialty plugins shipped with cleanclaim: cardiology, dermatology, therapy.

Each is registered under the entry-point group `cleanclaim.plugins` (pyproject.toml), the
same door an outside plugin package uses, and uses only the hook API
(`cleanclaim.engine.hookspecs`). See docs/plugins.md.
"""
