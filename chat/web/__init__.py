"""The browser page `chat serve` serves at ``/``: static HTML, CSS and JavaScript (no build step).

Files here are package data (see ``pyproject.toml``), so an installed ChatLab serves them
too; :mod:`chat.http.static` reads them once at start-up.
"""
