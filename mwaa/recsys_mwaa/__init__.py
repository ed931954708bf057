"""Package, validate and deploy the recommender workflow to Amazon MWAA.

Named ``recsys_mwaa``, not ``mwaa``: the MWAA image has a ``mwaa`` package of its own.
Run as ``python mwaa/recsys-mwaa <command>`` (see ``--help``).
"""
