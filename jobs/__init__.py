"""How a post goes out: one publish attempt through a platform adapter.

`jobs` never touches the database. It is handed an `Outgoing` post and returns a
`Receipt` or raises a `PublishError` (see `jobs.errors`).
"""
