"""Shared fixtures: a real HTTP server on 127.0.0.1, and an isolated weights setup."""

import hashlib
import http.server
import json
import threading

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append(self.path)
        route = server.routes.get(self.path)
        if route is None:
            self.send_error(404, "not found")
            return
        status, body, mode = route
        if mode == "hang":  # accept the request, answer nothing for a while
            server.release.wait(10)
            return
        if status != 200:
            self.send_error(status, "test error")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncated":  # promise the whole file, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A local HTTP server; set ``server.routes[path] = (status, body, mode)``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes = {}
    server.requests = []
    server.release = threading.Event()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/weights/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """A registry with one small file, an empty cache and no source weights folder.

    Returns a dict with the file's ``name``, ``body`` and ``sha256`` and the dirs used.
    """
    from astroml_affiliated import config, weights

    body = bytes(range(256)) * 64
    digest = hashlib.sha256(body).hexdigest()
    name = "toy-1.0.0.weights.h5"
    reg_dir = tmp_path / "registry"
    reg_dir.mkdir()
    registry = {"format": 1, "models": {"toy": {
        "version": "1.0.0", "architecture": "astroml_affiliated.nothing:build",
        "architecture_kwargs": {}, "input": {}, "training": {}, "model_card": "",
        "files": [{"name": name, "sha256": digest, "size": len(body)}]}}}
    (reg_dir / "registry.json").write_text(json.dumps(registry))
    cache = tmp_path / "cache"
    monkeypatch.setattr(weights, "REGISTRY_FILE", reg_dir / "registry.json")
    monkeypatch.setattr(weights, "SOURCE_WEIGHTS_DIR", tmp_path / "no-source-checkout")
    monkeypatch.setenv("ASTROML_AFFILIATED_CACHE_DIR", str(cache))
    monkeypatch.delenv("ASTROML_AFFILIATED_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("ASTROML_AFFILIATED_WEIGHTS_URL", raising=False)
    with config.conf.set_temp("weights_mirrors", []), \
            config.conf.set_temp("download_retries", 0), \
            config.conf.set_temp("weights_dir", ""):
        yield {"name": name, "body": body, "sha256": digest, "cache": cache,
               "tmp": tmp_path}
