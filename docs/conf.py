# Sphinx configuration for astroml_affiliated (sphinx-astropy, offline by default).
import datetime
import os
import sys

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403

sys.path.insert(0, os.path.abspath(".."))
import astroml_affiliated  # noqa: E402

project = "astroml_affiliated"
author = "The astroml_affiliated developers"
copyright = f"{datetime.date.today().year}, {author}"
version = release = astroml_affiliated.__version__

# The build machines have no internet: intersphinx inventories are fetched only when
# asked for (ASTROML_DOCS_INTERSPHINX=1), so an offline build stays free of warnings.
if os.environ.get("ASTROML_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}  # noqa: F811
    extensions = [e for e in extensions if e != "sphinx_astropy.ext.intersphinx_toggle"]  # noqa: F405

exclude_patterns = ["_build", "api/*.inc"]

# The tutorials (tutorials/*.md) are MyST Markdown notebooks: myst-nb runs each in a
# Jupyter kernel at every build, so the pages show what the code gives today, and a
# cell that fails fails the build.
extensions.append("myst_nb")  # noqa: F405
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# the sessions on the index page (plot directive): code and figure, no download links
plot_html_show_formats = False
plot_html_show_source_link = False
plot_formats = [("png", 80)]
html_theme_options = {"github_url": "https://github.com/astroml-affiliated/astroml_affiliated"}
html_title = f"{project} v{release}"
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_xref_param_type = False
nitpicky = False
