"""Command-line entry points: parse, build, call; nothing else.

The programs run on shared machines (laptops, servers, CI runners): unless the user chose one,
OpenMP threads wait passively instead of spinning, set here because the OpenMP runtime reads it
once, when torch is first imported. With one of two cores busy with other work, a toy training
update took 798 ms with the spinning default and 422 ms passive (334 ms with one thread; README,
Benchmarks); on an idle machine passive waiting costs about 2 %.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
