"""The supporters' toolkit: what a campaign gives its supporters to post, call and
write, as the `[toolkit]` section of its campaign file describes it.

`spec` reads and checks the section; `texts.build_kit` renders every text for every
step of the countdown, language and platform, with its share links (`share`) and the
fill-in letter compiled for the browser (`letter`). The site itself is written by
`scheduler.toolkit`.
"""

from content.toolkit.spec import Toolkit, parse_toolkit

__all__ = ["Toolkit", "parse_toolkit"]
