"""The findings console of `eksight ui --findings FILE [--archive PATH...]`: a findings source to filter
(source.py), the audit events behind a finding looked up with the hunting queries on DuckDB (archive.py), what
the page shows about one finding (detail.py) and the JSON API the wizard's server mounts (api.py)."""

API_PREFIX = "/api/console/"  # where the wizard's server mounts the console's API
