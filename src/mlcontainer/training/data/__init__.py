"""Where the rows come from: sources, reading a file, the column audit, the split, the profile."""
