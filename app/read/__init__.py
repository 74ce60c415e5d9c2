"""The read path: every record about her that reaches a caller is produced here, one level at a
time, with the access decision made once per level (as data, in the rows' own statement) and
attached to each row. GraphQL fields only read what was decided. See
docs/decisions/0014-decide-once-per-page.md.
"""
