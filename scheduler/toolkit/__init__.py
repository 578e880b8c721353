"""The supporters' toolkit as a static site: `site` writes it, `serve` previews it.

What the pages say is rendered and checked by `content.toolkit`; this package turns it
into HTML with the project's own CSS and JavaScript (`templates/`, `static/`).
"""
