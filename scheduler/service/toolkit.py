"""The supporters' toolkit: a static site of share links, call lines and a letter."""

from __future__ import annotations

from scheduler.toolkit.serve import make_server as toolkit_server
from scheduler.toolkit.serve import url_of as toolkit_url
from scheduler.toolkit.site import SiteReport
from scheduler.toolkit.site import build_site as build_toolkit

__all__ = ["SiteReport", "build_toolkit", "toolkit_server", "toolkit_url"]
