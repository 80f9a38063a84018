"""Drills: one module per scenario, steps with narration and checks."""
