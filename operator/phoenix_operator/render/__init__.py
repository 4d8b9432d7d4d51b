"""Collector configs from templates: sandboxed rendering, then structural and real validation."""
