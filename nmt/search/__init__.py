"""Search over a model with the ``encode`` / ``step`` / ``reorder`` contract."""
from .beam import beam_search  # noqa: F401
from .common import Hypothesis, max_lengths  # noqa: F401
from .greedy import greedy_search, sample_search  # noqa: F401
from .options import SearchOptions, decoding_options, end_of_run_options, validation_options  # noqa: F401
