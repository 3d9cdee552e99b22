"""Text search: words folded for matching, and the in-process index of merchants' words."""
