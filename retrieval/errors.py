"""Typed failures of the retrieval layer. Messages name the problem and the fix."""


class RetrievalError(Exception):
    """Base class: every message says what went wrong and what to do about it."""


class IndexNotFoundError(RetrievalError):
    pass


class CorruptIndexError(RetrievalError):
    pass


class ManifestMismatchError(RetrievalError):
    pass


class EmptyCorpusError(RetrievalError):
    pass


class UnsafePathError(RetrievalError):
    pass


class EmbedderError(RetrievalError):
    pass
