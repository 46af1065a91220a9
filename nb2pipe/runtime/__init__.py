"""What generated projects need at run time; copied verbatim into every project."""
