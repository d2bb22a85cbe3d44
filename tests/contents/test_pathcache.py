"""`PathCache`: forgetting a path and what is below it, without touching its neighbours."""

from __future__ import annotations

from contents.pathcache import PathCache


def test_drop_tree_forgets_the_path_and_everything_below_it_only() -> None:
    cache: PathCache[int] = PathCache(100)
    for i, path in enumerate(["/h/a", "/h/a/x", "/h/a/y/z", "/h/ab", "/h/ab/x", "/h", "/other"]):
        cache.put(path, i)
    cache.drop_tree("/h/a")
    assert [p for p in ["/h/a", "/h/a/x", "/h/a/y/z"] if p in cache] == []
    assert [p for p in ["/h/ab", "/h/ab/x", "/h", "/other"] if p in cache] == [
        "/h/ab",
        "/h/ab/x",
        "/h",
        "/other",
    ]
    cache.drop_tree("/h/")  # a trailing slash names the same folder
    assert len(cache) == 1 and cache.get("/other") == 6


def test_a_path_below_an_uncached_folder_is_found_from_any_ancestor() -> None:
    cache: PathCache[str] = PathCache(100)
    cache.put("/h/deep/er/file", "v")
    cache.drop_tree("/h")
    assert len(cache) == 0
    cache.put("/h/deep/er/file", "again")  # the index was emptied with it: linked anew
    cache.drop_tree("/h/deep")
    assert "/h/deep/er/file" not in cache


def test_pop_forgets_one_path_and_keeps_what_is_below_it() -> None:
    cache: PathCache[int] = PathCache(100)
    cache.put("/h/d", 1)
    cache.put("/h/d/f", 2)
    assert cache.pop("/h/d") == 1
    assert cache.pop("/h/d") is None
    assert cache.get("/h/d/f") == 2
    cache.drop_tree("/h/d")
    assert "/h/d/f" not in cache
    cache.put("/h/e", 3)
    cache.pop("/h/e")
    cache.drop_tree("/h")  # nothing left to find, nothing left behind
    assert len(cache) == 0


def test_the_cache_is_bounded() -> None:
    cache: PathCache[int] = PathCache(3)
    for i in range(3):
        cache.put(f"/h/{i}", i)
    cache.put("/h/0", 10)  # replacing a path does not count
    assert len(cache) == 3
    cache.put("/h/new", 4)  # over the limit: forgets everything (each path is asked again)
    assert len(cache) == 1 and cache.get("/h/new") == 4
