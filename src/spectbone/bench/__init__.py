"""Benchmarks of this machine (`spectbone bench`, `make bench`): ``training`` (training-step speed
against the matmul peak), ``pipeline`` (loader, BM3D, whole-DAG time and memory), ``command``.

No rule calls these: they measure the pipeline from outside.
"""
