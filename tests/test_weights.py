import pytest
from astropy.utils.data import conf as data_conf

from astroml_affiliated import conf, weights
from astroml_affiliated.errors import (InputError, WeightsDownloadError, WeightsError,
                                       WeightsHashError, WeightsNotFoundError)


@pytest.fixture
def served(http_server, weights_env, monkeypatch):
    monkeypatch.setenv("ASTROML_AFFILIATED_WEIGHTS_URL", http_server.base_url)
    route = "/weights/" + weights_env["name"]
    return http_server, weights_env, route


def test_first_download_then_cache_hit(served):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    path = weights.fetch_file(env["name"])
    assert path.parent == env["cache"]
    assert path.read_bytes() == env["body"]
    assert server.requests == [route]
    again = weights.fetch_file(env["name"])
    assert again == path
    assert server.requests == [route], "a cache hit must not make a second request"
    assert weights.fetch("toy") == [path]


def test_hash_mismatch_refused_and_removed(served):
    server, env, route = served
    server.routes[route] = (200, b"not the weights" * 100, "")
    with pytest.raises(WeightsHashError, match="sha256"):
        weights.fetch_file(env["name"])
    leftovers = list(env["cache"].iterdir()) if env["cache"].exists() else []
    assert leftovers == []


def test_corrupt_cached_file_is_replaced(served):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    env["cache"].mkdir(parents=True)
    (env["cache"] / env["name"]).write_bytes(b"corrupt")
    path = weights.fetch_file(env["name"])
    assert path.read_bytes() == env["body"]
    assert server.requests == [route]


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_are_clear(served, status):
    server, env, route = served
    server.routes[route] = (status, b"", "")
    with pytest.raises(WeightsDownloadError, match=f"HTTP {status}") as info:
        weights.fetch_file(env["name"])
    assert "ASTROML_AFFILIATED_WEIGHTS_URL" in str(info.value)
    assert not (env["cache"] / env["name"]).exists()


def test_truncated_response_refused(served):
    server, env, route = served
    server.routes[route] = (200, env["body"], "truncated")
    with pytest.raises(WeightsError):
        weights.fetch_file(env["name"])
    assert not (env["cache"] / env["name"]).exists()
    assert server.requests == [route]


def test_mirror_used_when_main_url_fails(http_server, weights_env, monkeypatch):
    monkeypatch.setenv("ASTROML_AFFILIATED_WEIGHTS_URL", http_server.base_url + "broken/")
    http_server.routes["/weights/" + weights_env["name"]] = (200, weights_env["body"], "")
    with conf.set_temp("weights_mirrors", [http_server.base_url]):
        path = weights.fetch_file(weights_env["name"])
    assert path.read_bytes() == weights_env["body"]
    assert len(http_server.requests) == 2


@pytest.mark.parametrize("switch", ["ours", "astropy"])
def test_downloads_disabled_gives_clear_error(served, switch):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    setting = (conf.set_temp("allow_download", False) if switch == "ours"
               else data_conf.set_temp("allow_internet", False))
    with setting, pytest.raises(WeightsNotFoundError) as info:
        weights.fetch_file(env["name"])
    message = str(info.value)
    assert env["name"] in message and "ASTROML_AFFILIATED_WEIGHTS_DIR" in message
    assert env["sha256"] in message
    assert server.requests == []


def test_user_weights_dir_takes_precedence(served, monkeypatch, tmp_path):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    user = tmp_path / "mine"
    user.mkdir()
    (user / env["name"]).write_bytes(env["body"])
    monkeypatch.setenv("ASTROML_AFFILIATED_WEIGHTS_DIR", str(user))
    assert weights.fetch_file(env["name"]) == user / env["name"]
    assert server.requests == []


def test_user_weights_dir_from_config(served, tmp_path):
    server, env, route = served
    user = tmp_path / "configured"
    user.mkdir()
    (user / env["name"]).write_bytes(env["body"])
    with conf.set_temp("weights_dir", str(user)):
        assert weights.fetch_file(env["name"]) == user / env["name"]
    assert server.requests == []


def test_wrong_file_in_user_dir_refused(served, monkeypatch, tmp_path):
    server, env, route = served
    user = tmp_path / "mine"
    user.mkdir()
    (user / env["name"]).write_bytes(b"something else")
    monkeypatch.setenv("ASTROML_AFFILIATED_WEIGHTS_DIR", str(user))
    with pytest.raises(WeightsHashError, match="user weights directory"):
        weights.fetch_file(env["name"])


def test_explicit_path_used_as_given(weights_env, tmp_path):
    mine = tmp_path / "my-own.weights.h5"
    mine.write_bytes(b"my own training")
    assert weights.fetch_file(weights_env["name"], path=mine) == mine
    with pytest.raises(WeightsNotFoundError):
        weights.fetch_file(weights_env["name"], path=tmp_path / "absent.h5")


def test_source_checkout_folder_used(weights_env, monkeypatch, tmp_path):
    source = tmp_path / "checkout-weights"
    source.mkdir()
    (source / weights_env["name"]).write_bytes(weights_env["body"])
    monkeypatch.setattr(weights, "SOURCE_WEIGHTS_DIR", source)
    with conf.set_temp("allow_download", False):
        assert weights.fetch_file(weights_env["name"]) == source / weights_env["name"]


def test_download_all_and_verify(served):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    assert weights.verify() == {env["name"]: "missing"}
    paths = weights.download_all()
    assert [p.name for p in paths] == [env["name"]]
    assert weights.verify() == {env["name"]: "ok"}


def test_unknown_names():
    with pytest.raises(InputError, match="unknown model"):
        weights.get_entry("no-such-model")
    with pytest.raises(InputError, match="not a weights file"):
        weights.fetch_file("no-such-file.weights.h5")


def test_write_registry_entry_records_hash(tmp_path):
    reg = tmp_path / "registry.json"
    f = tmp_path / "m.weights.h5"
    f.write_bytes(b"abc")
    entry = weights.write_registry_entry(
        "m", version="0.1", architecture="astroml_affiliated.x:y", architecture_kwargs={},
        files=[f], input={}, training={}, model_card="docs/m.rst", registry_path=reg)
    assert entry["files"][0]["sha256"] == weights.sha256sum(f)
    assert entry["files"][0]["size"] == 3


def test_shipped_registry_matches_committed_files():
    """Every file the repository's registry lists is in weights/ with that sha256."""
    data = weights.registry()
    assert data["format"] == 1
    if not weights.SOURCE_WEIGHTS_DIR.is_dir():
        pytest.skip("not a source checkout")
    for name, entry in data["models"].items():
        for key in ("version", "architecture", "files", "input", "training", "model_card"):
            assert key in entry, (name, key)
        for rec in entry["files"]:
            path = weights.SOURCE_WEIGHTS_DIR / rec["name"]
            assert path.stat().st_size == rec["size"] < 20 * 1024 * 1024
            assert weights.sha256sum(path) == rec["sha256"]


def test_verify_reports_a_corrupt_cached_file_and_keeps_it(served):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    env["cache"].mkdir(parents=True)
    (env["cache"] / env["name"]).write_bytes(b"corrupt")
    report = weights.verify()
    assert report[env["name"]].startswith("sha256 mismatch"), report
    assert (env["cache"] / env["name"]).read_bytes() == b"corrupt"
    assert server.requests == []


def test_corrupt_file_in_read_only_cache_is_a_hash_error(served, monkeypatch):
    server, env, route = served
    env["cache"].mkdir(parents=True)
    (env["cache"] / env["name"]).write_bytes(b"corrupt")

    def read_only(self, *args, **kwargs):
        raise PermissionError(30, "Read-only file system", str(self))

    monkeypatch.setattr(type(env["cache"]), "unlink", read_only)
    with pytest.raises(WeightsHashError, match="download cache"):
        weights.fetch_file(env["name"])
    assert server.requests == []


def test_unwritable_cache_is_a_clear_error(served, monkeypatch):
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    blocker = env["tmp"] / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ASTROML_AFFILIATED_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(WeightsDownloadError, match="ASTROML_AFFILIATED_CACHE_DIR") as info:
        weights.fetch_file(env["name"])
    assert "cannot store" in str(info.value)


def test_downloaded_file_follows_the_umask(served):
    import os

    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    old = os.umask(0o022)
    try:
        path = weights.fetch_file(env["name"])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_explicit_file_refused_for_a_model_of_several_files(weights_env, monkeypatch):
    """One file given for an ensemble must not become every member."""
    import json

    reg = json.loads(weights.REGISTRY_FILE.read_text())
    first = reg["models"]["toy"]["files"][0]
    reg["models"]["toy"]["files"].append({**first, "name": "toy-1.0.0-m1.weights.h5"})
    path = weights_env["tmp"] / "two.json"
    path.write_text(json.dumps(reg))
    monkeypatch.setattr(weights, "REGISTRY_FILE", path)
    mine = weights_env["tmp"] / "mine"
    mine.mkdir()
    for rec in reg["models"]["toy"]["files"]:
        (mine / rec["name"]).write_bytes(b"member")
    with pytest.raises(InputError, match="directory"):
        weights.fetch("toy", path=mine / first["name"])
    assert [p.name for p in weights.fetch("toy", path=mine)] == [
        "toy-1.0.0.weights.h5", "toy-1.0.0-m1.weights.h5"]


def test_corrupt_cached_file_removed_by_another_process(served, monkeypatch):
    """Two processes find the same corrupt cached file; the second one to delete it
    must not fail because the first already did."""
    server, env, route = served
    server.routes[route] = (200, env["body"], "")
    env["cache"].mkdir(parents=True)
    cached = env["cache"] / env["name"]
    cached.write_bytes(b"corrupt")
    real = weights.sha256sum

    def hash_then_other_process_deletes(path):
        digest = real(path)
        if path == cached and digest != env["sha256"]:
            cached.unlink()
        return digest

    monkeypatch.setattr(weights, "sha256sum", hash_then_other_process_deletes)
    assert weights.fetch_file(env["name"]).read_bytes() == env["body"]


@pytest.mark.parametrize("proc_status", ["/proc/self/status", "/nonexistent/status"])
def test_umask_is_read_without_changing_it(tmp_path, monkeypatch, proc_status):
    """Both ways of reading the umask (Linux /proc, or a probe file) agree, and leave it."""
    import os

    monkeypatch.setattr(weights, "_PROC_STATUS", proc_status)
    old = os.umask(0o027)
    try:
        assert weights._process_umask(tmp_path) == 0o027
        assert os.umask(0o027) == 0o027  # unchanged by the call
    finally:
        os.umask(old)
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_download_timeout_is_configurable(served):
    """A server that accepts and never answers fails after conf.download_timeout."""
    server, env, route = served
    server.routes[route] = (200, env["body"], "hang")
    with conf.set_temp("download_timeout", 0.3), conf.set_temp("download_retries", 0):
        with pytest.raises(WeightsDownloadError, match="Timeout"):
            weights.fetch_file(env["name"])
    with conf.set_temp("download_timeout", 0.0):
        with pytest.raises(InputError, match="download_timeout"):
            weights.fetch_file(env["name"])
