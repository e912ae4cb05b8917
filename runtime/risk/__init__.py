"""The labor-risk model's runtime contract, shared by training and serving.

schema    the enterprise profile (datasets/labor_risk/schema.yaml) and its tiers
cells     column and cell parsers (values, missing, wrong type)
validate  every cell of a batch checked against the schema; all problems reported at once
tiers     the expected-cost tier decision and the cost matrix
floors    policy floors (datasets/labor_risk/policy_floors.yaml)
tables    CSV/Parquet uploads in, result tables out
scoring   an exported model's onnxruntime run, decision, floors and reasons (`RiskModel`)
"""
