"""Pipeline benchmarks run on small sizes and report what `make bench` prints."""

from spectbone.bench.pipeline import bm3d_benchmark, loader_benchmark


def test_loader_benchmark_streams_and_compares_with_training():
    r = loader_benchmark(n_images=4, size=32, levels=5, batch=4, emanet_base=4, train_steps=1)
    assert r["samples"] == 20
    assert r["loader_images_per_s"] > 0 and r["train_images_per_s"] > 0
    assert r["loader_over_training"] == r["loader_images_per_s"] / r["train_images_per_s"]
    assert r["peak_rss_mb"] >= r["peak_rss_mb_before_loading"] > 0


def test_bm3d_benchmark_measures_parallel_speedup():
    r = bm3d_benchmark(n_images=2, size=32, workers=2)
    assert r["seconds_per_image"] > 0 and r["speedup"] > 0
