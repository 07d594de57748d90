"""gidr's reference backend: every stage in plain, readable NumPy.

It is the correctness oracle for faster backends. O(n^2) stages refuse inputs above
:data:`MAX_SAMPLES` points instead of exhausting memory.
"""

#: Largest input the O(n^2) reference stages accept.
MAX_SAMPLES = 20_000
