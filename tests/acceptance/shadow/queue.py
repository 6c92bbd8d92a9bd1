"""A module named like the standard library's queue, for warn-shadows-stdlib.yaml."""
