"""Finding what to cut: which metrics and labels the queries people rely on use, and what the rest costs."""
