"""Seeding: synthetic cities for scale (real data loaders arrive with the seeding issue)."""
