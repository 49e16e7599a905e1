"""Slow, obviously correct reference implementations (one module per area).

Every vectorized or numba implementation in cemreplay is checked against these on
hypothesis-generated input. They loop per event in plain Python on purpose.
"""
