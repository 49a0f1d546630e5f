"""Configuration of astroml_affiliated (an :class:`astropy.config.ConfigNamespace`).

Items can be set for a session (``astroml_affiliated.conf.default_device = "cpu"``),
temporarily (``with conf.set_temp("allow_download", False): ...``) or permanently in
``~/.astropy/config/astroml_affiliated.cfg``. Environment variables
``ASTROML_AFFILIATED_WEIGHTS_URL`` and ``ASTROML_AFFILIATED_WEIGHTS_DIR`` override the
weights URL and directory.
"""

from astropy import config as _config

__all__ = ["Conf", "conf", "DEFAULT_WEIGHTS_URL", "DEFAULT_WEIGHTS_MIRRORS"]

#: The weights are committed under ``weights/`` of the project's repository, so a raw
#: file URL of that folder is their canonical published location.
DEFAULT_WEIGHTS_URL = (
    "https://raw.githubusercontent.com/astroml-affiliated/astroml_affiliated/main/weights/"
)
#: jsDelivr serves files of public GitHub repositories (up to 20 MB each, which is the
#: project's limit for a weights file) from a CDN: the fallback when GitHub is unreachable.
DEFAULT_WEIGHTS_MIRRORS = [
    "https://cdn.jsdelivr.net/gh/astroml-affiliated/astroml_affiliated@main/weights/",
]


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `astroml_affiliated`."""

    weights_url = _config.ConfigItem(
        DEFAULT_WEIGHTS_URL,
        "Base URL that weights files are downloaded from (a file's name is appended). "
        "Overridden by the environment variable ASTROML_AFFILIATED_WEIGHTS_URL.",
        cfgtype="string",
    )
    weights_mirrors = _config.ConfigItem(
        DEFAULT_WEIGHTS_MIRRORS,
        "Further base URLs tried in order when the main one fails.",
        cfgtype="string_list",
    )
    weights_dir = _config.ConfigItem(
        "",
        "A directory of weights files that takes precedence over the download cache "
        "(for offline machines or your own weights). Overridden by the environment "
        "variable ASTROML_AFFILIATED_WEIGHTS_DIR.",
        cfgtype="string",
    )
    cache_dir = _config.ConfigItem(
        "",
        "Where downloaded weights are kept. Empty: the operating system's cache "
        "directory (e.g. ~/.cache/astroml_affiliated). Overridden by the environment "
        "variable ASTROML_AFFILIATED_CACHE_DIR.",
        cfgtype="string",
    )
    allow_download = _config.ConfigItem(
        True,
        "Whether missing weights may be downloaded. Downloads are also refused when "
        "astropy.utils.data.conf.allow_internet is False.",
        cfgtype="boolean",
    )
    download_retries = _config.ConfigItem(
        2,
        "How many times a failed download is retried per URL.",
        cfgtype="integer",
    )
    download_timeout = _config.ConfigItem(
        60.0,
        "Seconds a download waits for the server to answer (per attempt and URL) before "
        "it counts as failed.",
        cfgtype="float",
    )
    default_device = _config.ConfigItem(
        "auto",
        "Device for model calls that pass device=None: 'auto' (a GPU when TensorFlow "
        "sees one, else the CPU), 'cpu', 'gpu' or 'gpu:N'.",
        cfgtype="string",
    )


conf = Conf()
