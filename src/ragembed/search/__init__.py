"""The search language: what strategies ask and stores answer, the one place the two meet.

    plan.py          plan nodes: VectorSearch, Rescore, Fusion, KeywordSearch, Rerank
    schema.py        a collection's vector fields and the record of how its embedders encoded
    filters.py       metadata filters
    capabilities.py  what a store declares it can do
    validation.py    every refusal of a plan, schema or strategy, from the declared capabilities
    executor.py      running plans a stage at a time, for sync and async engine clients alike
    ranking.py       the client-side ranking steps: ties ordered by id, reciprocal rank fusion

Strategies (ragembed.strategies) write plans in this language; stores (ragembed.stores) validate
them here and translate them to their engines; neither imports the other.
"""
