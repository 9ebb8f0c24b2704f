"""The numba kernel of the BLP: struct-of-arrays state and the functions that transform it.

Entry point: ``core.kernel.dispatch.process_batch``. Read ``core.model.engine`` first: it is the
specification every function here mirrors.
"""
