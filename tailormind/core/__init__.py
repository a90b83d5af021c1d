"""The bottom layer: ideas every stage shares, importing nothing else from the package.

One module per idea: ranking metrics, vectors, durable writes, seeded sampling, vocabularies and
the model-backend table. See ``docs/architecture.md`` for the layer order.
"""
