"""hjepa: planning with hierarchical JEPA world models."""
