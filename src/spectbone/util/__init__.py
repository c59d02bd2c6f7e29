"""Helpers every stage shares: ``runtime`` (logging, seeding, threads, device), ``outputs`` (tables as
CSV + Markdown, figures as PNG + PDF), ``methods`` (display names of the compared methods).
"""
