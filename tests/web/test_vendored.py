"""The vendored htmx is the npm release it claims to be (scripts/vendor_htmx.sh), and the package ships it."""

from __future__ import annotations

import hashlib
from importlib import resources

HTMX = "htmx-2.0.11.min.js"
# sha256 of dist/htmx.min.js in htmx.org@2.0.11 (its npm tarball's integrity is pinned in the script)
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_the_vendored_htmx_is_the_pinned_release():
    data = resources.files("web").joinpath("static").joinpath("vendor").joinpath(HTMX).read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


def test_pages_load_scripts_only_from_the_service():
    base = resources.files("web").joinpath("templates").joinpath("base.html").read_text()
    assert f'src="/static/vendor/{HTMX}"' in base
    assert "http://" not in base and "https://" not in base
