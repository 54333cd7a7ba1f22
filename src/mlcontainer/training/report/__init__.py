"""What a person reads: pictures, the HTML report, the model card and permutation importance."""
