"""What every stage stands on: located records (`base`: `Frozen`, `Span`, lazy imports),
the errors a user sees and how they are worded (`errors`: diagnostics with a framed
excerpt and a caret, `UserError`, `DataError`), the registry every vocabulary is kept in
(`registry`), and atomic file writes with the run directory's names (`files`). Nothing
here imports another part of dgmc.
"""
