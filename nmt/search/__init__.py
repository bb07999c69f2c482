"""Search over a model with the ``encode`` / ``step`` / ``reorder`` contract."""
from .beam import beam_search  # noqa: F401
from .common import Hypothesis, max_lengths  # noqa: F401
from .greedy import greedy_search, sample_search  # noqa: F401
from .options import SearchOptions  # noqa: F401
