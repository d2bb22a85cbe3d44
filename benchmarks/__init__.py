"""Side-by-side benchmarks: cs3sync's CS3ContentsManager on the emulator vs the stock local manager.

Run with ``python -m benchmarks [--quick]`` (or ``make bench [QUICK=1]``); see ``benchmarks/README.md``.
"""
