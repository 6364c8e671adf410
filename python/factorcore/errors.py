"""Exceptions raised by factorcore.

Every problem with the input is reported as one of these, with a message that names
the offending column, date or parameter:

- :class:`InvalidInputError` (a ``ValueError``): values, shapes or parameters that
  cannot describe a valid problem: empty input, a window longer than the data,
  unsorted or duplicate dates, frames with no dates in common, a nonzero value beyond
  1e150 or below 1e-150 in size (its square would overflow or underflow), results that
  would exceed 1e308 (weights times returns, returns compounded), ...
- :class:`NonFiniteError` (an :class:`InvalidInputError`): ``+inf`` or ``-inf`` in
  the data. ``NaN`` and ``null`` are not errors: they mean *missing*.
- :class:`DtypeError` (a ``TypeError``): an input of the wrong type or dtype.

Iterative algorithms that stop at their iteration bound without converging report it
with a :class:`ConvergenceWarning` and NaN results where they stopped.

Beyond bad input:

- ``KeyboardInterrupt``: Ctrl-C (SIGINT) stops a running computation within a fraction
  of a second; its worker threads stop before the exception is raised, and the next
  call works as usual. A signal handler of your own that raises another exception
  stops the computation the same way, with that exception.
- ``MemoryError``: an output too large to allocate, with a message naming the output
  and the size asked for.
- :class:`InternalError` (a ``RuntimeError``): a bug in factorcore (an internal check
  failed in the compiled core). The message names the function; please report it.
"""

from factorcore._core import DtypeError, InternalError, InvalidInputError, NonFiniteError

__all__ = [
    "ConvergenceWarning",
    "DtypeError",
    "InternalError",
    "InvalidInputError",
    "NonFiniteError",
]


class ConvergenceWarning(UserWarning):
    """An iterative algorithm reached its iteration bound; its results there are NaN."""
