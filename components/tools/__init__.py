"""boto3 tools that talk to the real account: `modelyard preflight` and `modelyard models pull|push|verify`.

Unlike `modelyard plan`, these need credentials (or, for `models pull`, the Hugging Face hub). They share
`components.tools.aws` for sessions, clients and the model bucket's name.
"""
