"""The comparison: candidates, presets, the budget, selection, the decision layer and metrics."""
